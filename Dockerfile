# Build: the same static build .ci/run performs.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/bot ./cmd/bot

# Run: distroless static carries CA certificates and runs as non-root; time
# zone data is compiled into the binary (time/tzdata), so deploy windows work.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bot /bot
# The default SQLite file lands in the working directory, writable by nonroot.
WORKDIR /home/nonroot
ENV SHIPBOT_LISTEN=:8080 SHIPBOT_DB=/home/nonroot/shipbot.db
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/bot"]
CMD ["serve"]
