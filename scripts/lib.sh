# Shell helpers shared by scripts/test.sh and bench/run.sh (sourced, not run).

# free_port FROM: the first port from FROM on that nothing accepts connections on. Start below
# Linux's ephemeral range (32768-60999): a port there can be held by an outgoing connection,
# which this probe cannot see.
free_port() {
  local port
  for port in $(seq "$1" $(($1 + 500))); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
  return 1
}
