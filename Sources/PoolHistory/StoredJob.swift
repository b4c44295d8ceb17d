import Foundation
import GRDB
import PoolProtocol

/// A job's row: `JobRecord` to statement arguments and back. Progress is not stored: it only means
/// something while the job runs, and a job that was running when the daemon died is `interrupted`.
enum StoredJob {
    static func arguments(_ record: JobRecord) -> StatementArguments {
        [
            record.id, record.kind, record.state.rawValue, record.parameters.jsonText,
            JSONValue.array(record.slots.map { .number(Double($0)) }).jsonText,
            record.submittedAt, record.startedAt, record.finishedAt, record.result?.jsonText, record.error,
            record.log.map { JSONValue.array($0.map(JSONValue.string)).jsonText },
        ]
    }

    /// The record in a row, or a reason it cannot be read (a state this version does not know, a
    /// value of the wrong type: read from disk, nothing is trusted to be what the schema says).
    static func record(_ row: Row, decoder: JSONDecoder) throws -> JobRecord {
        func value<T: DatabaseValueConvertible>(_ type: T.Type, _ column: String) throws -> T? {
            let raw: DatabaseValue = row.hasColumn(column) ? row[column] : .null
            if raw.isNull { return nil }
            guard let value = T.fromDatabaseValue(raw) else { throw HistoryError("column \(column) holds \(raw), not a \(T.self)") }
            return value
        }
        func required<T: DatabaseValueConvertible>(_ type: T.Type, _ column: String) throws -> T {
            guard let value = try value(type, column) else { throw HistoryError("column \(column) is empty") }
            return value
        }
        func json<T: Decodable>(_ type: T.Type, _ column: String) throws -> T? {
            guard let text = try value(String.self, column) else { return nil }
            return try decoder.decode(T.self, from: Data(text.utf8))
        }
        let id = try required(Int.self, "id")
        let stateName = try required(String.self, "state")
        guard let state = JobState(rawValue: stateName) else {
            throw HistoryError("job \(id): unknown state '\(stateName)'")
        }
        return JobRecord(
            id: id, kind: try required(String.self, "kind"), state: state,
            parameters: try json(JSONValue.self, "parameters") ?? .object([:]),
            slots: try json([Int].self, "slots") ?? [],
            submittedAt: try required(String.self, "submittedAt"), startedAt: try value(String.self, "startedAt"),
            finishedAt: try value(String.self, "finishedAt"),
            progress: nil, result: try json(JSONValue.self, "result"), error: try value(String.self, "error"),
            log: try json([String].self, "log"))
    }
}
