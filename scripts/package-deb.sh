#!/usr/bin/env bash
# Builds the Debian package of hwbench with dpkg-deb (no debhelper or cargo-deb needed):
#
#     scripts/package-deb.sh [--out DIR] [--companion DIR]
#
# hwbench_<version>_<arch>.deb holds the binary (/usr/lib/hwbench/hwbench, linked from
# /usr/bin/hwbench), one man page per subcommand, bash/zsh/fish completions, and a systemd service
# and timer (installed disabled) that write `hwbench info --format prometheus` into node_exporter's
# textfile folder every 5 minutes; /etc/default/hwbench sets the folder.
# With --companion DIR (a folder made by `scripts/build-cuda.sh --install DIR`), it also builds
# hwbench-cuda_<version>_<arch>.deb: the CUDA companion and its bundled libraries in
# /usr/lib/hwbench, next to hwbench, where hwbench looks for it.
# The binary is target/release/hwbench, built first if missing (`cargo build --release`).
# DEB_COMPRESSION (xz by default; gzip or none) is dpkg-deb's -Z: CI packs the companion's 700 MB
# of CUDA libraries with gzip, for time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/target/deb
companion=
while [[ $# -gt 0 ]]; do
    case $1 in
        --out) out=${2:?--out needs a folder}; shift 2 ;;
        --companion) companion=${2:?--companion needs the folder build-cuda.sh installed}; shift 2 ;;
        *) echo "package-deb: unknown option $1 (use --out DIR and --companion DIR)" >&2; exit 2 ;;
    esac
done
compression=${DEB_COMPRESSION:-xz}
binary=$root/target/release/hwbench
[[ -x $binary ]] || (cd "$root" && cargo build --release)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
arch=$(dpkg --print-architecture)
# The newest glibc symbol the binary uses is the oldest libc6 it runs on.
glibc=$(objdump -T "$binary" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n1)
mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# Control files common to both packages: name, version, what it is.
control() {
    local package=$1 tree=$2 depends=$3 description=$4
    mkdir -p "$tree/DEBIAN"
    local size
    size=$(du -sk --exclude=DEBIAN "$tree" | cut -f1)
    cat >"$tree/DEBIAN/control" <<EOF
Package: $package
Version: $version
Architecture: $arch
Maintainer: hwbench developers
Installed-Size: $size
Depends: $depends
Section: utils
Priority: optional
Description: $description
EOF
}

# The main package.
tree=$stage/hwbench
install -D -m 0755 "$binary" "$tree/usr/lib/hwbench/hwbench"
mkdir -p "$tree/usr/bin"
ln -s ../lib/hwbench/hwbench "$tree/usr/bin/hwbench"
mkdir -p "$tree/usr/share/man/man1"
"$binary" man --out "$tree/usr/share/man/man1"
gzip -9n "$tree/usr/share/man/man1"/*.1
install -d "$tree/usr/share/bash-completion/completions" "$tree/usr/share/zsh/vendor-completions" \
    "$tree/usr/share/fish/vendor_completions.d"
"$binary" completions bash >"$tree/usr/share/bash-completion/completions/hwbench"
"$binary" completions zsh >"$tree/usr/share/zsh/vendor-completions/_hwbench"
"$binary" completions fish >"$tree/usr/share/fish/vendor_completions.d/hwbench.fish"
install -D -m 0644 "$root/packaging/hwbench-textfile.service" "$tree/lib/systemd/system/hwbench-textfile.service"
install -D -m 0644 "$root/packaging/hwbench-textfile.timer" "$tree/lib/systemd/system/hwbench-textfile.timer"
install -D -m 0644 "$root/packaging/default" "$tree/etc/default/hwbench"
install -D -m 0644 "$root/README.md" "$tree/usr/share/doc/hwbench/README.md"
gzip -9n "$tree/usr/share/doc/hwbench/README.md"
cat >"$tree/usr/share/doc/hwbench/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: hwbench

Files: *
License: MIT or Apache-2.0
EOF
control hwbench "$tree" "libc6 (>= $glibc)" "what the machine is, and how fast a model trains on each device
 hwbench describes the CPU, memory, OS and every NVIDIA GPU (through NVML) with
 theoretical peaks and findings, and trains a small MLP on every device and
 beside PyTorch. The hwbench-textfile timer (disabled until enabled) keeps
 'hwbench info' metrics in node_exporter's textfile folder."
echo /etc/default/hwbench >"$tree/DEBIAN/conffiles"
install -m 0755 "$root/packaging/prerm" "$root/packaging/postrm" "$tree/DEBIAN/"
dpkg-deb --root-owner-group -Z"$compression" --build "$tree" "$out/hwbench_${version}_${arch}.deb" >/dev/null
echo "$out/hwbench_${version}_${arch}.deb"

# The CUDA companion, when it was built.
if [[ -n $companion ]]; then
    [[ -x $companion/hwbench-cuda ]] || { echo "package-deb: no hwbench-cuda in $companion (run scripts/build-cuda.sh --install $companion)" >&2; exit 2; }
    tree=$stage/hwbench-cuda
    install -D -m 0755 "$companion/hwbench-cuda" "$tree/usr/lib/hwbench/hwbench-cuda"
    if [[ -d $companion/lib ]]; then
        cp -a "$companion/lib" "$tree/usr/lib/hwbench/lib"
    fi
    control hwbench-cuda "$tree" "hwbench (= $version)" "CUDA companion of hwbench
 hwbench-cuda trains hwbench's model on NVIDIA GPUs with candle's CUDA backend;
 hwbench finds it next to itself. It needs the NVIDIA driver (>= 580)."
    dpkg-deb --root-owner-group -Z"$compression" --build "$tree" "$out/hwbench-cuda_${version}_${arch}.deb" >/dev/null
    echo "$out/hwbench-cuda_${version}_${arch}.deb"
fi
