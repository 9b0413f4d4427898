#!/bin/sh
# Installs the C/C++ SDK into a prefix: libreid.so (versioned soname), libreid.a, reid.h,
# reid.hpp, a pkg-config file and a CMake package (find_package(reid)).
#
#   bindings/install.sh [--prefix DIR] [--debug] [--no-build] [--lib-dir DIR]
#
# --prefix DIR   where to install (default /usr/local): DIR/lib, DIR/include,
#                DIR/lib/pkgconfig/reid.pc, DIR/lib/cmake/reid/
# --debug        install the debug build (target/debug) instead of the release build
# --no-build     do not run cargo; install what is already built
# --lib-dir DIR  take libreid.so and libreid.a from DIR (implies --no-build)
set -eu

prefix=/usr/local
profile=release
build=1
lib_dir=
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="$2"; shift 2 ;;
        --prefix=*) prefix="${1#--prefix=}"; shift ;;
        --debug) profile=debug; shift ;;
        --no-build) build=0; shift ;;
        --lib-dir) lib_dir="$2"; build=0; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
target="${lib_dir:-${CARGO_TARGET_DIR:-$root/target}/$profile}"
if [ "$build" = 1 ]; then
    if [ "$profile" = release ]; then
        cargo build --manifest-path "$root/Cargo.toml" --lib --release
    else
        cargo build --manifest-path "$root/Cargo.toml" --lib
    fi
fi
for f in libreid.so libreid.a; do
    if [ ! -f "$target/$f" ]; then
        echo "install.sh: $target/$f is missing (build first, or drop --no-build)" >&2
        exit 1
    fi
done

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)
major=${version%%.*}
rest=${version#*.}
minor=${rest%%.*}
if [ "$major" = 0 ]; then abi="0.$minor"; else abi="$major"; fi

mkdir -p "$prefix/lib/pkgconfig" "$prefix/lib/cmake/reid" "$prefix/include"
prefix=$(cd "$prefix" && pwd)
lib="$prefix/lib"

# Copy to a temporary name and rename, so a running program never sees a half-written file.
put() { # put SOURCE DEST MODE
    cp "$1" "$2.tmp.$$"
    chmod "$3" "$2.tmp.$$"
    mv -f "$2.tmp.$$" "$2"
}
put "$target/libreid.so" "$lib/libreid.so.$version" 755
ln -sf "libreid.so.$version" "$lib/libreid.so.$abi"
ln -sf "libreid.so.$abi" "$lib/libreid.so"
put "$target/libreid.a" "$lib/libreid.a" 644
put "$root/include/reid.h" "$prefix/include/reid.h" 644
put "$root/bindings/cpp/reid.hpp" "$prefix/include/reid.hpp" 644

fill() { # fill TEMPLATE DEST
    sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" -e "s|@ABI@|$abi|g" \
        -e "s|@MAJOR@|$major|g" -e "s|@MINOR@|$minor|g" "$1" > "$2.tmp.$$"
    mv -f "$2.tmp.$$" "$2"
}
fill "$root/bindings/pkgconfig/reid.pc.in" "$lib/pkgconfig/reid.pc"
fill "$root/bindings/cmake/reidConfig.cmake.in" "$lib/cmake/reid/reidConfig.cmake"
fill "$root/bindings/cmake/reidConfigVersion.cmake.in" "$lib/cmake/reid/reidConfigVersion.cmake"

echo "installed reid $version ($profile) into $prefix"
