#!/usr/bin/env bash
# Exchange bench (issue 3): for each N, load N orders with `obmen orders import`, start
# `obmen serve`, run one full 1C session over HTTP with curl (checkauth, init, query, success,
# file, import until success) and report the time of every step and the server's peak RSS.
#
#   bench/exchange.sh                      # N = 1000 10000 100000 on SQLite
#   bench/exchange.sh 1000 10000           # chosen N
#   OBMEN_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test bench/exchange.sh
#                                          # the same on PostgreSQL (a fresh database per N)
#
#   OBMEN_BENCH_PERF=DIR bench/exchange.sh 100000
#                                          # also a CPU profile of the server during `query` and
#                                          # during `import` (perf record -g, DIR/query-N.data
#                                          # and DIR/import-N.data; the timings then include
#                                          # perf's overhead)
#
# Output: one markdown table row per N (times in seconds unless marked ms; RSS in MiB) — the
# format of docs/BENCHMARKS.md. Peak RSS is the server's VmHWM read from /proc after the session.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=("$@")
[ ${#SIZES[@]} -eq 0 ] && SIZES=(1000 10000 100000)
PG_URL="${OBMEN_BENCH_POSTGRES_URL:-}"
PORT="${OBMEN_BENCH_PORT:-18080}"
USER_NAME=bench
PASSWORD=bench-password
URL="http://127.0.0.1:$PORT/bitrix/admin/1c_exchange.php"

cargo build --release -q -p obmen
BIN="${CARGO_TARGET_DIR:-target}/release/obmen"
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
# awk, not python3: the pyenv shim costs ~150 ms a start, which would swamp the steps timed.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# N orders as JSON Lines (the body of POST /api/v1/orders), statuses N and P.
gen_orders() {
    python3 - "$1" >"$2" <<'PY'
import json, sys
n = int(sys.argv[1])
for i in range(1, n + 1):
    print(json.dumps({
        "number": f"B{i:07d}",
        "created_at": "2026-11-01T10:00:00Z",
        "status": "N" if i % 2 else "P",
        "currency": "RUB",
        "customer": {"type": "person", "first_name": "Иван", "last_name": f"Петров {i}",
                     "email": f"buyer{i}@example.com", "phone": "+7 900 000-00-00",
                     "address": "Москва, ул. Ленина, 1"},
        "delivery": {"method": "Курьер", "price": "300", "address": "Москва, ул. Ленина, 1"},
        "payment": {"method": "Картой онлайн", "paid": i % 3 == 0},
        "items": [
            {"sku": "A-1", "name": "Чайник электрический", "quantity": 2, "unit": "шт",
             "price": "1500.50", "vat_rate": "20"},
            {"sku": "B-2", "name": "Кружка", "quantity": "3", "price": "99.90",
             "discount": "10.00"},
        ],
        "discounts": [{"name": "Промокод", "amount": "50.00"}],
        "comment": "Позвонить заранее",
        "properties": {"utm_source": "yandex", "promo_code": "SALE10"},
    }, ensure_ascii=False))
PY
}

# A 1C status file (UTF-8 with BOM, schema 2.08) with one document per order: status, payment
# and shipment facts, as 1C's "Обмен с сайтом" sends them back.
gen_statuses() {
    python3 - "$1" >"$2" <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout
out.write("\ufeff<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
out.write("<КоммерческаяИнформация xmlns=\"urn:1C.ru:commerceml_2\" ВерсияСхемы=\"2.08\" "
          "ДатаФормирования=\"2026-11-02T12:00:00\">\n")
for i in range(1, n + 1):
    num = f"B{i:07d}"
    out.write(
        f"<Документ><Ид>{num}</Ид><Номер>{num}</Номер><Дата>2026-11-02</Дата>"
        "<ХозОперация>Заказ товара</ХозОперация><Роль>Продавец</Роль><Валюта>руб</Валюта>"
        "<Курс>1</Курс><Сумма>3569.60</Сумма><Время>12:00:00</Время><ЗначенияРеквизитов>"
        f"<ЗначениеРеквизита><Наименование>Номер по 1С</Наименование><Значение>УТ-{i:07d}</Значение></ЗначениеРеквизита>"
        "<ЗначениеРеквизита><Наименование>Дата по 1С</Наименование><Значение>2026-11-02 12:00:00</Значение></ЗначениеРеквизита>"
        "<ЗначениеРеквизита><Наименование>Статус заказа</Наименование><Значение>Готов к отгрузке</Значение></ЗначениеРеквизита>"
        f"<ЗначениеРеквизита><Наименование>Номер оплаты по 1С</Наименование><Значение>ОП-{i}</Значение></ЗначениеРеквизита>"
        "<ЗначениеРеквизита><Наименование>Дата оплаты по 1С</Наименование><Значение>2026-11-02 12:00:00</Значение></ЗначениеРеквизита>"
        "</ЗначенияРеквизитов></Документ>\n")
out.write("</КоммерческаяИнформация>\n")
PY
}

COOKIE=""
SESSID=""
# exchange MODE [extra query] [curl args...]: prints the body (also kept in $WORK/reply, or sent
# to $EXCHANGE_OUT); sets LAST_MS to the request's time and LAST_SIZE to the body's size. Call
# it in the current shell (not in a pipe or $(...)) when the timing is wanted.
exchange() {
    local mode="$1" extra="${2:-}"
    shift 2 || shift $#
    local url="$URL?type=sale&mode=$mode$extra"
    [ -n "$SESSID" ] && url="$url&sessid=$SESSID"
    local out="${EXCHANGE_OUT:-$WORK/reply}" t
    t=$(curl -sS -u "$USER_NAME:$PASSWORD" ${COOKIE:+-H "Cookie: $COOKIE"} -o "$out" \
        -w '%{time_total} %{size_download}' "$@" "$url")
    LAST_MS=$(awk -v t="${t% *}" 'BEGIN { printf "%.1f", t * 1000 }')
    LAST_SIZE="${t#* }"
    [ "$out" = /dev/null ] || cat "$out"
}

# The server's current and peak resident set and its CPU time so far (user + system), for the
# step log on stderr.
rss_note() {
    local cpu
    cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$SERVER_PID/stat")
    echo "  after $1: $(awk '/^VmRSS|^VmHWM/ {printf "%s %d MiB  ", $1, $2 / 1024}' "/proc/$SERVER_PID/status") CPU ${cpu} s" >&2
}

start_server() {
    local db="$1"
    OBMEN_LISTEN="127.0.0.1:$PORT" OBMEN_DATABASE_URL="$db" OBMEN_EXCHANGE_USER="$USER_NAME" \
        OBMEN_EXCHANGE_PASSWORD="$PASSWORD" OBMEN_API_TOKEN=bench-token-0123 RUST_LOG=warn \
        "$BIN" serve >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "server did not start:" >&2
    cat "$WORK/server.log" >&2
    exit 1
}

# perf_start NAME / perf_stop: profile the server between them when OBMEN_BENCH_PERF is set.
PERF_PID=""
perf_start() {
    [ -n "${OBMEN_BENCH_PERF:-}" ] || return 0
    mkdir -p "$OBMEN_BENCH_PERF"
    perf record -q -e cpu-clock -F 999 -g -p "$SERVER_PID" -o "$OBMEN_BENCH_PERF/$1.data" \
        >/dev/null 2>&1 &
    PERF_PID=$!
    sleep 0.5
}
perf_stop() {
    [ -n "$PERF_PID" ] || return 0
    kill -INT "$PERF_PID"
    wait "$PERF_PID" 2>/dev/null || true
    PERF_PID=""
}

stop_server() {
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

if [ -n "$PG_URL" ]; then BACKEND=PostgreSQL; else BACKEND=SQLite; fi
echo "backend: $BACKEND; machine: $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| N | orders import | checkauth (median of 20) | query | query size | success | file (upload) | import | peak RSS |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for n in "${SIZES[@]}"; do
    if [ -n "$PG_URL" ]; then
        db_name="obmen_bench_$n"
        psql "$PG_URL" -qAtc "DROP DATABASE IF EXISTS $db_name" >/dev/null
        psql "$PG_URL" -qAtc "CREATE DATABASE $db_name" >/dev/null
        DB="${PG_URL%/*}/$db_name"
    else
        # A fresh file per run: `bench/exchange.sh 100000 100000` measures the same session
        # twice instead of finding the first run's orders already confirmed.
        rm -f "$WORK/obmen-$n.db" "$WORK/obmen-$n.db-wal" "$WORK/obmen-$n.db-shm"
        DB="sqlite:$WORK/obmen-$n.db"
    fi
    gen_orders "$n" "$WORK/orders.jsonl"
    gen_statuses "$n" "$WORK/statuses.xml"

    t0=$(now)
    OBMEN_DATABASE_URL="$DB" "$BIN" orders import --quiet "$WORK/orders.jsonl" >/dev/null
    t_load=$(elapsed "$t0" "$(now)")

    start_server "$DB"

    # checkauth latency: 20 fresh logins, median.
    samples=()
    for _ in $(seq 1 20); do
        COOKIE="" SESSID=""
        exchange checkauth "" >/dev/null
        samples+=("$LAST_MS")
    done
    t_auth=$(printf '%s\n' "${samples[@]}" | sort -n | sed -n 10p)

    rss_note checkauth
    # One session.
    COOKIE="" SESSID=""
    reply=$(exchange checkauth "")
    COOKIE="$(sed -n 2p <<<"$reply")=$(sed -n 3p <<<"$reply")"
    SESSID="$(sed -n 4p <<<"$reply" | sed 's/^sessid=//')"
    exchange init "&version=2.08" >/dev/null
    limit=$(grep '^file_limit=' "$WORK/reply" | cut -d= -f2)

    # The answer goes to /dev/null: writing 700 MB to disk would time the disk, not obmen. The
    # journal says how many orders went out.
    perf_start "query-$n"
    EXCHANGE_OUT=/dev/null exchange query ""
    perf_stop
    t_query=$(awk -v ms="$LAST_MS" 'BEGIN { printf "%.3f", ms / 1000 }')
    offered=$(curl -sS -H "Authorization: Bearer bench-token-0123" \
        "http://127.0.0.1:$PORT/api/v1/exchange/sessions" |
        python3 -c "import json, sys; s = json.load(sys.stdin)['sessions'][0]; print(sum(r['documents'] for r in s['requests'] if r['mode'] == 'query'))")
    [ "$offered" -eq "$n" ] || { echo "query offered $offered orders, expected $n" >&2; exit 1; }
    size_mb=$(awk -v b="$LAST_SIZE" 'BEGIN { printf "%.1f MiB", b / 1048576 }')

    rss_note query
    exchange success "" >/dev/null
    head -1 "$WORK/reply" | grep -qx success
    t_success=$(awk -v ms="$LAST_MS" 'BEGIN { printf "%.3f", ms / 1000 }')

    rss_note success
    # Upload the status file in chunks of file_limit bytes.
    rm -f "$WORK"/chunk.*
    split -b "$limit" -a 4 "$WORK/statuses.xml" "$WORK/chunk."
    # The sum of the requests' times as curl saw them (the script's own work between them is
    # not obmen's).
    t_file=0
    for chunk in "$WORK"/chunk.*; do
        exchange file "&filename=statuses.xml" --data-binary "@$chunk" >/dev/null
        head -1 "$WORK/reply" | grep -qx success
        t_file=$(awk -v a="$t_file" -v ms="$LAST_MS" 'BEGIN { printf "%.3f", a + ms / 1000 }')
    done

    rss_note file
    t_import=0
    steps=0
    perf_start "import-$n"
    while :; do
        steps=$((steps + 1))
        exchange import "&filename=statuses.xml" >/dev/null
        first=$(head -1 "$WORK/reply")
        t_import=$(awk -v a="$t_import" -v ms="$LAST_MS" 'BEGIN { printf "%.3f", a + ms / 1000 }')
        [ "$first" = success ] && break
        [ "$first" = progress ] || { echo "import answered $first" >&2; cat "$WORK/reply" >&2; exit 1; }
    done

    perf_stop
    rss_note import
    rss_kb=$(awk '/^VmHWM/ {print $2}' "/proc/$SERVER_PID/status")
    stop_server
    rss=$(python3 -c "print(f'{$rss_kb / 1024:.1f}')")
    printf '| %s | %s s | %s ms | %s s | %s | %s s | %s s | %s s (%s requests) | %s MiB |\n' \
        "$n" "$t_load" "$t_auth" "$t_query" "$size_mb" "$t_success" "$t_file" "$t_import" "$steps" "$rss"
    [ -n "$PG_URL" ] && psql "$PG_URL" -qAtc "DROP DATABASE IF EXISTS $db_name" >/dev/null
done
