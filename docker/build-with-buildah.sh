#!/usr/bin/env bash
# Build one runtime image without a Docker engine: buildah with the vfs storage driver and chroot
# isolation (works as root without user namespaces or overlay mounts). Publishes nothing.
#
# Usage: docker/build-with-buildah.sh [PYTHON_VERSION]            (default 3.11)
#   DEBIAN_BASE=1 docker/build-with-buildah.sh 3.11
#     when docker.io is unreachable: build the base `python:3.11-slim` locally from Debian bookworm
#     (debootstrap, python3 from Debian: 3.11 only) and build the Dockerfile on top of it unchanged.
# Try it:  buildah --storage-driver vfs run --isolation chroot -v CODE_DIR:/code:ro \
#            --env AIS_ETL_LISTEN_HOST=127.0.0.1 $(buildah --storage-driver vfs from IMAGE) \
#            -- python -m airflow_ais_etl.runtime          (runs as uid 10001, the image's USER)
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-3.11}"
tag="localhost/airflow-ais-etl/runtime-python:${version}v2"
bah=(buildah --storage-driver vfs)

if [[ "${DEBIAN_BASE:-}" == 1 ]]; then
  [[ "$version" == 3.11 ]] || { echo "DEBIAN_BASE=1 provides Python 3.11 only (bookworm)" >&2; exit 2; }
  rootfs="$(mktemp -d)"
  trap 'rm -rf "$rootfs" "$rootfs.tar"' EXIT
  debootstrap --variant=minbase --include=python3-minimal,libpython3.11-stdlib,passwd \
    bookworm "$rootfs" http://deb.debian.org/debian
  ln -sf python3 "$rootfs/usr/bin/python"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" -cf "$rootfs.tar" .
  base="$("${bah[@]}" from scratch)"
  "${bah[@]}" add "$base" "$rootfs.tar" /
  "${bah[@]}" config --cmd '["python3"]' \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$base"
  "${bah[@]}" commit --rm "$base" "docker.io/library/python:${version}-slim"
  pull=(--pull=never)
else
  pull=()
fi

"${bah[@]}" bud "${pull[@]}" --isolation chroot \
  --build-arg "PYTHON_VERSION=${version}" \
  -f docker/runtime-python.Dockerfile -t "$tag" .
echo "built $tag"
