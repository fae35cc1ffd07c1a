# Shared by scripts/pg-start and scripts/pg-stop (sourced, not run).
# Where the running test cluster is recorded, and how to run a server binary: the server
# refuses to run as root, so as root we run it as the `postgres` OS user.

PG_STATE_DIR="$(pwd)/.run"
PG_DIR_FILE="$PG_STATE_DIR/postgres.dir"
PG_BINDIR_FILE="$PG_STATE_DIR/postgres.bindir"
PG_URL_FILE="$PG_STATE_DIR/postgres.url"
PG_TMP_PREFIX="adapter-test-pg."

as_pg() {
  if [[ $EUID -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

is_our_cluster_dir() {
  [[ -n $1 && -d $1 && $(basename "$1") == "$PG_TMP_PREFIX"* ]]
}

# True when the cluster recorded in .run/ is up.
pg_is_running() {
  [[ -f $PG_DIR_FILE && -f $PG_URL_FILE && -f $PG_BINDIR_FILE ]] || return 1
  local dir
  dir="$(cat "$PG_DIR_FILE")"
  is_our_cluster_dir "$dir" \
    && (cd "$dir" && as_pg "$(cat "$PG_BINDIR_FILE")/pg_ctl" -D "$dir/data" status >/dev/null)
}
