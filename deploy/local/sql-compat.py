#!/usr/bin/env python3
"""SQL compatibility check: every migration and every saved query runs on ClickHouse 18.16 (the
local server, over HTTP) and on a modern ClickHouse engine (chdb, in-process), and both engines
return the same rows for the same data.

The data is projections/testdata/TABLE.rows.jsonl, one file per table: the rows each projection
makes of the real fixtures (a unit test in projections/src/testdata.rs keeps the files equal to
the projections' output). Each saved query (api/queries/NAME.sql, and the reconciler's reconcile/queries/NAME.sql) runs with the parameters in
NAME.params.json and must return rows, and both engines must answer it with the same column
names and types: hudstream reads saved queries' rows as RowBinary, by position and type, so a
type one engine answers differently would be misread there.

Then every ClickHouse query of every Grafana dashboard (deploy/grafana/dashboards/*.json: each
panel target and each template variable on the grafana-clickhouse-datasource) runs the same way,
with the plugin's macros expanded as the plugin expands them, over a time range spanning the
data, `${repo}` set to the repository with the most workflow_job rows, and table names resolved
in the test database (the datasource's default database in production). Each must return rows;
a time-series target (format 0) must return `time` as its first column.
"""
import argparse, glob, json, os, re, sys, urllib.parse, urllib.request

import chdb
from chdb import session as chs


def statements(sql):
    out, cur = [], []
    for line in sql.splitlines():
        t = line.strip()
        if t.startswith('--') or (not t and not cur):
            continue
        cur.append(line)
        if t.endswith(';'):
            s = '\n'.join(cur).strip().rstrip(';').strip()
            if s:
                out.append(s)
            cur = []
    if ''.join(cur).strip():
        out.append('\n'.join(cur).strip())
    return out


def quote(s):
    return "'" + s.replace('\\', '\\\\').replace("'", "\\'") + "'"


# The dashboards' time range (it spans the data) and interval, as the Grafana ClickHouse plugin
# (pkg/macros/macros.go) expands them: unix seconds in toDateTime(...).
DASHBOARD_FROM, DASHBOARD_TO, DASHBOARD_INTERVAL_S = 1420070400, 1893456000, 3600  # 2015-01-01, 2030-01-01


def bind(sql, database, params):
    def lit(m):
        inner = m.group(1)
        if inner == 'database':
            return database
        name, typ = [x.strip() for x in inner.split(':', 1)]
        v = params[name]
        if typ == 'String':
            return quote(v)
        if typ in ('Int64', 'UInt64'):
            return str(int(v))
        if typ in ('Array(Int64)', 'Array(UInt64)'):
            return '[' + ', '.join(str(int(x)) for x in v) + ']'
        if typ == 'Array(String)':
            return '[' + ', '.join(quote(x) for x in v) + ']'
        raise SystemExit(f'unsupported parameter type {typ}')
    return re.sub(r'\{([^{}]+)\}', lit, sql)


def expand_macros(sql, variables):
    """What the plugin sends for a panel's rawSql: its macros and the dashboard variables
    expanded. Any other `$name` left over is an error: the dashboards use no other macro."""
    sql = re.sub(r'\$__timeFilter\(\s*([^()]+?)\s*\)',
                 lambda m: f'{m.group(1)} >= toDateTime({DASHBOARD_FROM}) AND {m.group(1)} <= toDateTime({DASHBOARD_TO})', sql)
    sql = sql.replace('$__fromTime', f'toDateTime({DASHBOARD_FROM})').replace('$__toTime', f'toDateTime({DASHBOARD_TO})')
    sql = sql.replace('$__interval_s', str(DASHBOARD_INTERVAL_S))
    for name, value in variables.items():
        sql = sql.replace('${' + name + '}', value)
        sql = re.sub(r'\$' + name + r'\b', lambda m: value, sql)
    left = re.search(r'\$\{?\w+', sql)
    if left:
        raise RuntimeError(f'unexpanded macro or variable {left.group(0)}')
    return sql


def dashboard_queries(root):
    """(name, format, rawSql) of every ClickHouse query of every dashboard: panel targets
    (rows' nested panels too) and query variables. format 0 = time series, 1 = table."""
    out = []
    for path in sorted(glob.glob(os.path.join(root, 'deploy/grafana/dashboards/*.json'))):
        dash = json.load(open(path))
        stem = os.path.basename(path)[:-len('.json')]
        def clickhouse(ds):
            return isinstance(ds, dict) and ds.get('type') == 'grafana-clickhouse-datasource'
        for var in dash.get('templating', {}).get('list', []):
            if var.get('type') == 'query' and clickhouse(var.get('datasource')):
                q = var.get('query')
                out.append((f'{stem}: variable {var["name"]}', 1, q['rawSql'] if isinstance(q, dict) else q))
        panels = []
        for p in dash.get('panels', []):
            panels.append(p)
            panels.extend(p.get('panels', []))
        for p in panels:
            targets = [t for t in p.get('targets', []) if clickhouse(t.get('datasource', p.get('datasource')))]
            for t in targets:
                suffix = f' [{t.get("refId")}]' if len(targets) > 1 else ''
                out.append((f'{stem}: {p.get("title")}{suffix}', t.get('format', 1), t['rawSql']))
    return out


class Server:
    """ClickHouse over HTTP (the local 18.16 server)."""
    name = 'ClickHouse 18.16 server'

    def __init__(self, url):
        self.url = url.rstrip('/')

    def run(self, sql, body=None, database=None):
        # 18.16 has no USE over HTTP (each request is its own session): the database is a parameter.
        params = {'query': sql, 'output_format_json_quote_64bit_integers': 0}
        if database:
            params['database'] = database
        q = urllib.parse.urlencode(params)
        req = urllib.request.Request(f'{self.url}/?{q}', data=(body or b''), method='POST')
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.read().decode()
        except urllib.error.HTTPError as e:
            raise RuntimeError(e.read().decode()[:1500])

    def insert(self, table, rows):
        self.run(f'INSERT INTO {table} FORMAT JSONEachRow', rows.encode())

    def select(self, sql, database=None):
        return [json.loads(l) for l in self.run(sql + '\nFORMAT JSONEachRow', database=database).splitlines() if l.strip()]

    def columns(self, sql):
        return [(c['name'], c['type']) for c in json.loads(self.run(sql + '\nFORMAT JSON'))['meta']]


class Embedded:
    """A modern ClickHouse engine in-process (chdb)."""

    def __init__(self):
        self.s = chs.Session()
        self.name = f'chdb {chdb.__version__} (ClickHouse {self.s.query("SELECT version()", "CSV").bytes().decode().strip()})'

    def run(self, sql):
        return self.s.query(sql, 'JSONEachRow').bytes().decode()

    def insert(self, table, rows):
        # chdb has no request body: the rows go inline after FORMAT.
        self.s.query(f'INSERT INTO {table} FORMAT JSONEachRow\n{rows}')

    def select(self, sql, database=None):
        if database:
            self.s.query(f'USE {database}')
        try:
            return [json.loads(l) for l in self.run(sql).splitlines() if l.strip()]
        finally:
            if database:
                self.s.query('USE default')

    def columns(self, sql):
        meta = json.loads(self.s.query(sql, 'JSON').bytes().decode())['meta']
        return [(c['name'], c['type']) for c in meta]


def normalize(rows):
    # 18.16 and modern ClickHouse agree on values but not always on JSON number forms.
    def n(v):
        if isinstance(v, list):
            return [n(x) for x in v]
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, float):  # ratios: the engines may differ in the last digit printed
            return float(f'{v:.12g}')
        if isinstance(v, str) and re.fullmatch(r'-?\d+', v):
            return int(v)
        if v == '0000-00-00 00:00:00':  # DateTime 0 as 18.16 prints it; modern: 1970-01-01
            return '1970-01-01 00:00:00'
        return v
    return [{k: n(v) for k, v in r.items()} for r in rows]


def check_cluster_ddl(a):
    """The cluster form of every migration (replicated local tables, distributed tables, ON
    CLUSTER): run on the 18.16 cluster in a database of its own, and parsed by chdb, which cannot
    run it — an in-process engine has no ZooKeeper and no remote servers — so `formatQuery`
    checks that modern ClickHouse reads every statement. Answers the number of failures."""
    ddl = statements(open(a.cluster_ddl).read())
    db, failures = a.cluster_database, 0
    cluster = re.search(r'ON CLUSTER (\w+)', ddl[0]).group(1)
    server = Server(a.cluster_url)
    try:
        server.run(f'DROP DATABASE IF EXISTS {db} ON CLUSTER {cluster}')
        server.run(f'CREATE DATABASE {db} ON CLUSTER {cluster}')
        for s in ddl:
            server.run(s)
        tables = server.select(f"SELECT name, engine FROM system.tables WHERE database = '{db}'")
        engines = sorted({t['engine'] for t in tables})
        server.run(f'DROP DATABASE IF EXISTS {db} ON CLUSTER {cluster}')
        print(f'ok    {server.name} cluster {cluster}: {len(ddl)} statement(s), {len(tables)} tables ({", ".join(engines)})')
    except Exception as e:
        failures += 1
        print(f'FAIL  {server.name} cluster {cluster}: {e}')
    try:
        for s in ddl:
            chdb.query(f'SELECT formatQuery({quote(s)})', 'CSV')
        print(f'ok    chdb: all {len(ddl)} cluster statement(s) parse (not run: no ZooKeeper, no remote servers in-process)')
    except Exception as e:
        failures += 1
        print(f'FAIL  chdb cannot parse the cluster DDL: {e}')
    return failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--root', required=True)
    ap.add_argument('--clickhouse-url', required=True)
    ap.add_argument('--cluster-url', help='a node of a ClickHouse cluster, for the cluster DDL')
    ap.add_argument('--cluster-ddl', help='`hudstream migrate --print` on a cluster configuration')
    ap.add_argument('--cluster-database', help='the database that DDL creates')
    a = ap.parse_args()
    failures = 0
    if a.cluster_ddl:
        failures += check_cluster_ddl(a)
    db = f'compat_{os.getpid()}'
    migrations = sorted(glob.glob(os.path.join(a.root, 'schemas/migrations/*.sql')))
    queries = sorted(glob.glob(os.path.join(a.root, 'api/queries/*.sql')) + glob.glob(os.path.join(a.root, 'reconcile/queries/*.sql')))
    data = {os.path.basename(f)[:-len('.rows.jsonl')]: open(f).read()
            for f in sorted(glob.glob(os.path.join(a.root, 'projections/testdata/*.rows.jsonl')))}
    rows = ''.join(data.values())
    panels = dashboard_queries(a.root)
    # ${repo}: the repository with the most workflow_job rows (ties: the first by name).
    repos = {}
    for line in data.get('workflow_job', '').splitlines():
        if line.strip():
            r = json.loads(line)['repository_full_name']
            repos[r] = repos.get(r, 0) + 1
    variables = {'repo': min(repos, key=lambda r: (-repos[r], r))} if repos else {}
    results, types = {}, {}
    for engine in (Server(a.clickhouse_url), Embedded()):
        try:
            engine.run(f'DROP DATABASE IF EXISTS {db}')
            engine.run(f'CREATE DATABASE {db}')
            for m in migrations:
                for s in statements(open(m).read()):
                    engine.run(s.replace('{database}', db))
            for table, table_rows in data.items():
                engine.insert(f'{db}.{table}', table_rows)
            # The _check_* integrity columns refuse a keyless row on both engines.
            try:
                engine.insert(f'{db}.workflow_job', '{"repository_full_name": "", "id": 0, "version": 1}\n')
                raise RuntimeError('a keyless workflow_job row was accepted: the _check_row_has_key column did not fire')
            except RuntimeError as e:
                if 'was accepted' in str(e):
                    raise
            except Exception:
                pass
            for q in queries:
                name = os.path.basename(q)[:-4]
                params = json.load(open(q[:-4] + '.params.json'))
                sql = bind(open(q).read(), db, params)
                got = normalize(engine.select(sql))
                if not got:
                    raise RuntimeError(f'{name} returned no rows')
                results.setdefault(name, []).append((engine.name, got))
                types.setdefault(name, []).append((engine.name, engine.columns(sql)))
            for name, fmt, sql in panels:
                try:
                    got = normalize(engine.select(expand_macros(sql, variables), database=db))
                except Exception as e:
                    raise RuntimeError(f'{name}: {e}')
                if not got:
                    raise RuntimeError(f'{name} returned no rows')
                if fmt == 0 and next(iter(got[0])) != 'time':
                    raise RuntimeError(f'{name} is a time series but its first column is {next(iter(got[0]))!r}, not time')
                results.setdefault(name, []).append((engine.name, got))
            engine.run(f'DROP DATABASE IF EXISTS {db}')
            print(f'ok    {engine.name}: {len(migrations)} migration(s), {len(queries)} saved quer(ies), '
                  f'{len(panels)} dashboard quer(ies), {rows.count(chr(10))} rows in {len(data)} tables')
        except Exception as e:  # report every engine, then fail
            failures += 1
            print(f'FAIL  {engine.name}: {e}')
    for name, per_engine in results.items():
        if len(per_engine) == 2 and per_engine[0][1] != per_engine[1][1]:
            failures += 1
            print(f'FAIL  {name}: engines disagree\n  {per_engine[0][0]}: {per_engine[0][1]}\n  {per_engine[1][0]}: {per_engine[1][1]}')
        elif len(per_engine) == 2:
            print(f'ok    {name}: same rows on both engines')
    for name, per_engine in sorted(types.items()):
        if len(per_engine) == 2 and per_engine[0][1] != per_engine[1][1]:
            failures += 1
            print(f'FAIL  {name}: the engines answer different column types (rows are read by type)')
            for (engine, cols) in per_engine:
                print(f'  {engine}: ' + ', '.join(f'{n} {t}' for n, t in cols))
        elif len(per_engine) == 2:
            print(f'ok    {name}: same column types on both engines: ' + ', '.join(f'{n} {t}' for n, t in per_engine[0][1]))
    sys.exit(1 if failures else 0)


if __name__ == '__main__':
    main()
