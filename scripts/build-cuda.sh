#!/usr/bin/env bash
# Builds `hwbench-cuda`, the CUDA companion of hwbench, on a machine with no GPU and no CUDA
# install, and puts it next to a CPU-only `hwbench` in an install folder:
#
#     scripts/build-cuda.sh                               # -> dist/
#     scripts/build-cuda.sh --install DIR                 # -> DIR/hwbench, DIR/hwbench-cuda, DIR/lib/
#     scripts/build-cuda.sh --install DIR --system-cuda   # the same without DIR/lib/
#
# Everything CUDA comes from PyPI (nvcc, headers, cuBLAS, cuRAND, NVRTC, the runtime), pinned to
# the CUDA 13.0 set, into a cache folder (HWBENCH_CUDA_CACHE, default ~/.cache/hwbench-cuda);
# running it again reuses the cache and cargo's build. The kernels are compiled for compute
# capability CUDA_COMPUTE_CAP (default 80) as PTX, which the driver compiles on first use for any
# newer GPU (Ampere, Ada, Hopper, Blackwell).
#
# The install runs on any machine with the NVIDIA driver (>= 580, for CUDA 13.0): the CUDA
# libraries the companion needs, from the same pinned wheels, are copied into DIR/lib/, where it
# looks first; libcuda.so.1 is never copied (it is the driver's). With --system-cuda they are left
# out (about 40 MB instead of 700 MB) and the machine's CUDA 13 libraries are used. The search
# order, and HWBENCH_CUDA_LIBS=system, are in the README's CUDA section.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
install_dir="$root/dist"
bundle=yes
while [[ $# -gt 0 ]]; do
    case "$1" in
        --install) install_dir=${2:?--install needs a folder}; shift 2 ;;
        --system-cuda) bundle=no; shift ;;
        *) echo "build-cuda: unknown option $1 (use --install DIR and --system-cuda)" >&2; exit 2 ;;
    esac
done
cache=${HWBENCH_CUDA_CACHE:-$HOME/.cache/hwbench-cuda}
compute_cap=${CUDA_COMPUTE_CAP:-80}
python=${PYTHON:-python3}

# The pins of the cuda-toolkit==13.0.2 meta-package. PTX from a newer nvcc than the oldest driver
# people run is rejected by that driver, so newer is not better here.
pins=(
    nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88
    nvidia-cublas==13.1.0.3 nvidia-curand==10.4.0.35
)

site="$cache/site"
if [[ "$(cat "$site/.pins" 2>/dev/null)" != "${pins[*]}" ]]; then
    echo "build-cuda: downloading the CUDA 13.0 toolkit pieces from PyPI into $site" >&2
    rm -rf "$site"
    "$python" -m pip install --quiet --disable-pip-version-check --no-deps --target "$site" "${pins[@]}"
    echo "${pins[*]}" > "$site/.pins"
fi
cu="$site/nvidia/cu13"
[[ -x "$cu/bin/nvcc" ]] || { echo "build-cuda: no nvcc in $cu/bin" >&2; exit 1; }

# A private CUDA_HOME: the wheels ship only versioned libraries, the linker wants unversioned names.
cuda_home="$cache/cuda-home"
mkdir -p "$cuda_home/lib64" "$cuda_home/stubs"
ln -sfn "$cu/include" "$cuda_home/include"
ln -sfn "$cu/bin" "$cuda_home/bin"
for lib in "$cu"/lib/lib*.so.*; do
    name=$(basename "$lib")
    ln -sf "$lib" "$cuda_home/lib64/${name%%.so.*}.so"
done

# No wheel ships libcuda (it belongs to the driver). Link against a stub that exports every driver
# function cudarc declares; it is never shipped, and the real libcuda.so.1 comes with the driver.
cd "$root"
cargo fetch --quiet
cudarc_dir=$(cargo metadata --format-version 1 --features cuda 2>/dev/null \
    | "$python" -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"]=="cudarc").rsplit("/",1)[0])')
stub_c="$cuda_home/stubs/libcuda.c"
grep -oE 'pub unsafe fn cu[A-Za-z0-9_]+' "$cudarc_dir/src/driver/sys/mod.rs" | awk '{print $4}' | sort -u \
    | awk '{printf "int %s(void) { return 999; /* CUDA_ERROR_UNKNOWN */ }\n", $1}' > "$stub_c.new"
if ! cmp -s "$stub_c.new" "$stub_c" || [[ ! -f "$cuda_home/lib64/libcuda.so" ]]; then
    mv "$stub_c.new" "$stub_c"
    cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$cuda_home/lib64/libcuda.so" "$stub_c"
else
    rm -f "$stub_c.new"
fi

export CUDA_HOME="$cuda_home" CUDA_PATH="$cuda_home" NVCC="$cu/bin/nvcc" PATH="$cu/bin:$PATH"
export CUDA_COMPUTE_CAP="$compute_cap" CUDARC_CUDA_VERSION=13000
export CUDAFORGE_THREADS=${CUDAFORGE_THREADS:-$(nproc)}

# Two builds, two target folders: `hwbench` must never link CUDA, and features are per package.
echo "build-cuda: building hwbench-cuda (compute capability $compute_cap, PTX)" >&2
CARGO_TARGET_DIR="$root/target/cuda" cargo build --release --features cuda --bin hwbench-cuda
echo "build-cuda: building hwbench" >&2
cargo build --release --bin hwbench

mkdir -p "$install_dir"
install -m 0755 "$root/target/release/hwbench" "$install_dir/hwbench"
install -m 0755 "$root/target/cuda/release/hwbench-cuda" "$install_dir/hwbench-cuda"
rm -rf "$install_dir/lib"
if [[ $bundle == yes ]]; then
    # Every library the companion needs that the wheels provide, and what those need in turn;
    # NVRTC also loads its builtins at run time.
    mkdir -p "$install_dir/lib"
    needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
    queue=("$install_dir/hwbench-cuda")
    while [[ ${#queue[@]} -gt 0 ]]; do
        file=${queue[0]}
        queue=("${queue[@]:1}")
        for lib in $(needed "$file"); do
            if [[ -e "$cu/lib/$lib" && ! -e "$install_dir/lib/$lib" ]]; then
                cp -L "$cu/lib/$lib" "$install_dir/lib/$lib"
                queue+=("$install_dir/lib/$lib")
            fi
        done
    done
    if ls "$install_dir/lib"/libnvrtc.so.* >/dev/null 2>&1; then
        cp -L "$cu"/lib/libnvrtc-builtins.so.* "$install_dir/lib/"
    fi
    echo "build-cuda: bundled $(ls "$install_dir/lib" | tr '\n' ' ')($(du -sh "$install_dir/lib" | cut -f1))" >&2
fi
echo "build-cuda: installed hwbench and hwbench-cuda in $install_dir" >&2
