# shellcheck shell=bash
# The build environment shared by scripts/up.sh and scripts/test.sh. Both
# commands must build with the same settings, or cargo compiles everything a
# second time: CARGO_PROFILE_DEV_DEBUG changes every crate's fingerprint, and
# CARGO_INCREMENTAL that of the workspace's own crates. Each can be
# overridden from the environment (then both commands should get the same value).
: "${SQLX_OFFLINE:=true}"         # queries are checked against .sqlx/, no live DB needed to build
: "${CARGO_INCREMENTAL:=0}"       # no incremental data: faster clean builds, half the disk
: "${CARGO_PROFILE_DEV_DEBUG:=0}" # no debug info (Cargo.toml's dev profile has line tables)
export SQLX_OFFLINE CARGO_INCREMENTAL CARGO_PROFILE_DEV_DEBUG
