# Base images are pinned by digest (the tag beside it says what it is, the
# digest decides which image it is), so a rebuild of the same commit gets
# the same bases; Dependabot (.github/dependabot.yml) proposes updates as
# reviewable commits. The Go image's toolchain may be older than go.mod's
# patch release: GOTOOLCHAIN=auto fetches the exact one go.mod names.

# Build: the same static build .ci/run performs.
FROM golang:1.26@sha256:595c7847cff97c9a9e76f015083c481d26078f961c9c8dca3923132f51fe12f1 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/bot ./cmd/bot \
 && mkdir -p /out/data

# Run: distroless static carries CA certificates and runs as non-root; time
# zone data is compiled into the binary (time/tzdata), so deploy windows work.
FROM gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639
COPY --from=build /out/bot /bot
# The SQLite database lives in /data, a volume owned by nonroot (uid 65532):
# mount it (docker run -v shipbot-data:/data …) or every restart starts from
# an empty database.
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /data
VOLUME /data
ENV SHIPBOT_LISTEN=:8080 SHIPBOT_DB=/data/shipbot.db
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/bot"]
CMD ["serve"]
