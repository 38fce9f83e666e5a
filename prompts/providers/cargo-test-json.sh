#!/bin/sh
# Runs the workspace tests and prints {"failures": [{"name", "file", "line", "message"}], "failed": N,
# "passed": N} for the strategy loop's `tests` context provider (see prompts/fix-failing-tests.md.tera).
# Configure it in kite.toml:
#   [sched.providers.tests]
#   command = "sh prompts/providers/cargo-test-json.sh"
#   timeout = "20m"
# Extra arguments for `cargo test` come from KITE_TEST_ARGS (default: --workspace --release).
# Exits 0 whenever it printed JSON, even when tests fail: the failures are the data.
cargo test ${KITE_TEST_ARGS:---workspace --release} --no-fail-fast --color never 2>&1 | awk '
function esc(s,    out, i, c) {
    # Character by character: gsub backslash rules differ between awks.
    out = ""
    for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c == "\\") out = out "\\\\"
        else if (c == "\"") out = out "\\\""
        else if (c == "\t") out = out "\\t"
        else if (c >= " ") out = out c
    }
    return out
}
/^test .* \.\.\. FAILED$/ {
    name = $2; if (!(name in seen)) { seen[name] = 1; order[++n] = name }
    failed++
}
/^test .* \.\.\. ok$/ { passed++ }
# A build that fails has no failing tests to report: report the build itself.
/^error(\[E[0-9]+\])?: / { if (berr < 10) { build = build esc($0) "\\n"; berr++ } }
/^ *--> / { if (bfile == "") { split($2, q, ":"); bfile = q[1]; bline = q[2] } }
/^---- .* stdout ----$/ { cur = $2; lines = 0; next }
/^failures:$/ { cur = ""; next }
cur != "" {
    # Thread ids change every run; the message must not, or each round would re-file the task.
    l = $0; gsub(/ \([0-9]+\) panicked at/, " panicked at", l)
    if (l != "" && lines < 20 && l !~ /^(stack backtrace|note: )/) { msg[cur] = msg[cur] esc(l) "\\n"; lines++ }
    if (!(cur in file) && match($0, /panicked at [^:]+:[0-9]+/)) {
        loc = substr($0, RSTART + 12, RLENGTH - 12); split(loc, p, ":"); file[cur] = p[1]; line[cur] = p[2]
    }
}
END {
    printf "{\"failed\": %d, \"passed\": %d, \"failures\": [", failed, passed
    if (n == 0 && build != "") {
        printf "{\"name\": \"build\", \"file\": \"%s\", \"line\": %d, \"message\": \"%s\"}", esc(bfile), bline + 0, build
    }
    for (i = 1; i <= n; i++) {
        k = order[i]
        printf "%s{\"name\": \"%s\", \"file\": \"%s\", \"line\": %d, \"message\": \"%s\"}", (i > 1 ? ", " : ""), esc(k), esc(file[k]), line[k] + 0, msg[k]
    }
    print "]}"
}'
