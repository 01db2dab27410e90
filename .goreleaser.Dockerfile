# The release image (.goreleaser.yaml, dockers_v2): GoReleaser builds it with
# buildx for each platform from the static binary it built, placed in the
# context under the platform's name (linux/amd64/bot). Nothing is compiled or
# run here, so the arm64 image needs no emulation. The runtime is the
# repository Dockerfile's: the same distroless base, pinned by the same
# digest, the same user, environment, volume and entrypoint.
FROM gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639
ARG TARGETPLATFORM
COPY $TARGETPLATFORM/bot /bot
# BuildKit (which buildx is) creates a missing WORKDIR owned by the USER set
# before it: /data is nonroot's (uid 65532), so SQLite can create the
# database there. Mount it (docker run -v shipbot-data:/data ...) or every
# restart starts from an empty database.
USER 65532:65532
WORKDIR /data
VOLUME /data
ENV SHIPBOT_LISTEN=:8080 SHIPBOT_DB=/data/shipbot.db
EXPOSE 8080
ENTRYPOINT ["/bot"]
CMD ["serve"]
