import GRDB

/// The history's tables, as versioned migrations: a database written by an earlier poold is brought
/// up to date when opened, and one written by a later poold is refused rather than misread.
enum HistorySchema {
    static let table = "job"

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: jobs") { db in
            // One row per job. What the history is searched by is a plain indexed column; what is only
            // shown (parameters, slots, result, log) is JSON text, checked to be JSON.
            try db.execute(sql: """
                CREATE TABLE job (
                  id INTEGER PRIMARY KEY,
                  kind TEXT NOT NULL,
                  state TEXT NOT NULL,
                  parameters TEXT NOT NULL CHECK (json_valid(parameters)),
                  slots TEXT NOT NULL CHECK (json_valid(slots)),
                  submittedAt TEXT NOT NULL,
                  startedAt TEXT,
                  finishedAt TEXT,
                  result TEXT CHECK (result IS NULL OR json_valid(result)),
                  error TEXT,
                  log TEXT CHECK (log IS NULL OR json_valid(log))
                );
                CREATE INDEX job_kind ON job(kind);
                CREATE INDEX job_state ON job(state);
                CREATE INDEX job_submittedAt ON job(submittedAt);
                CREATE INDEX job_finishedAt ON job(finishedAt);
                """)
        }
        migrator.registerMigration("v2: fewer indexes") { db in
            // Nothing searches by kind or time yet, and every index is one more b-tree to update
            // with each row written: these three made up about a third of a write's time.
            try db.execute(sql: """
                DROP INDEX job_kind;
                DROP INDEX job_submittedAt;
                DROP INDEX job_finishedAt;
                """)
        }
        migrator.registerMigration("v3: rows set aside") { db in
            // Rows the daemon cannot use as they are (an id no poold hands out), kept for whoever
            // wants to look at them rather than deleted.
            try db.execute(sql: """
                CREATE TABLE job_set_aside (
                  id INTEGER, kind TEXT, state TEXT, parameters TEXT, slots TEXT, submittedAt TEXT,
                  startedAt TEXT, finishedAt TEXT, result TEXT, error TEXT, log TEXT,
                  reason TEXT NOT NULL, setAsideAt TEXT NOT NULL
                );
                """)
        }
        return migrator
    }

    /// The columns of a job row, in the order of `upsert`'s arguments.
    static let columns = ["id", "kind", "state", "parameters", "slots", "submittedAt", "startedAt", "finishedAt", "result", "error", "log"]

    /// Inserts a job or replaces every column of the row with its id.
    static let upsert = """
        INSERT INTO job (id, kind, state, parameters, slots, submittedAt, startedAt, finishedAt, result, error, log)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET
          kind = excluded.kind, state = excluded.state, parameters = excluded.parameters, slots = excluded.slots,
          submittedAt = excluded.submittedAt, startedAt = excluded.startedAt, finishedAt = excluded.finishedAt,
          result = excluded.result, error = excluded.error, log = excluded.log
        """

    /// Deletes finished jobs that are not among the newest `?` by id. Queued and running jobs stay:
    /// they are still live (the daemon prunes its memory by the same rule). Runs with every write,
    /// so it must not cost in proportion to the limit: the cut-off id is one walk down the primary
    /// key, and the deletion a range of it (`NOT IN` a subquery of the newest ids built a set of
    /// them and scanned the table each time: about 0.5 ms with the default limit of 1000).
    static let prune = """
        DELETE FROM job
        WHERE id <= (SELECT id FROM job ORDER BY id DESC LIMIT 1 OFFSET ?)
          AND state NOT IN ('queued', 'running')
        """
}
