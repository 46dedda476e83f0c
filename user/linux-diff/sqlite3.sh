# sqlite3 under differential test: tables, 20,000 inserts in a
# transaction, an index, a join, aggregates, a rollback journal and WAL,
# integrity checks.
cd /tmp
db=/tmp/diff.db
rm -f $db $db-wal $db-shm $db-journal
sqlite3 $db <<'SQL'
PRAGMA journal_mode=DELETE;
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 20000)
INSERT INTO t(k, v) SELECT i % 97, printf('row-%05d', i) FROM n;
CREATE INDEX t_k ON t(k);
CREATE TABLE names(k INTEGER PRIMARY KEY, name TEXT);
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i < 96)
INSERT INTO names SELECT i, 'name' || i FROM n;
SELECT count(*), sum(k), min(v), max(v) FROM t;
SELECT n.name, count(*), sum(t.id) FROM t JOIN names n ON n.k = t.k
  WHERE t.k IN (3, 50, 96) GROUP BY n.name ORDER BY n.name;
BEGIN; DELETE FROM t WHERE k = 5; ROLLBACK;
SELECT count(*) FROM t WHERE k = 5;
PRAGMA integrity_check;
PRAGMA journal_mode=WAL;
BEGIN; UPDATE t SET v = upper(v) WHERE id % 1000 = 0; COMMIT;
SELECT v FROM t WHERE id IN (1000, 20000) ORDER BY id;
PRAGMA wal_checkpoint(TRUNCATE);
PRAGMA integrity_check;
SQL
echo "sqlite3 status $?"
sqlite3 $db 'SELECT count(*), total(length(v)) FROM t;'
ls $db
rm -f $db $db-wal $db-shm $db-journal
