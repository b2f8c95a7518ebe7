#!/bin/sh
# deploy/skeleton.sh SRC DEST: the workspace's manifests with empty sources,
# for the image's dependency layer (deploy/Dockerfile). Building DEST compiles
# every dependency and nothing of ours, so that layer is rebuilt only when a
# Cargo.toml or Cargo.lock changes, not on every code change. POSIX sh only:
# no extra tool in the build image.
set -eu
src=$1
dest=$2
mkdir -p "$dest"
cp "$src/Cargo.toml" "$src/Cargo.lock" "$dest/"
# Patched third-party code ([patch.crates-io]): a dependency, copied whole.
mkdir -p "$dest/shared"
cp -R "$src/shared/vendor" "$dest/shared/vendor"
cd "$src"
find shared services tests -name Cargo.toml ! -path 'shared/vendor/*' | while read -r manifest; do
    dir=$(dirname "$manifest")
    mkdir -p "$dest/$dir"
    cp "$manifest" "$dest/$manifest"
    # An empty stand-in for each target file and build script the crate has,
    # so cargo sees the same targets (and builds the build-dependencies).
    for file in "$dir/build.rs" "$dir/src/lib.rs" "$dir/src/main.rs" "$dir"/src/bin/*.rs; do
        [ -f "$file" ] || continue
        mkdir -p "$dest/$(dirname "$file")"
        case "$file" in
        */lib.rs) : >"$dest/$file" ;;
        *) echo 'fn main() {}' >"$dest/$file" ;;
        esac
    done
done
