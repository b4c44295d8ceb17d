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

    /// The record in a row, or a reason it cannot be read (a state this version does not know).
    static func record(_ row: Row, decoder: JSONDecoder) throws -> JobRecord {
        func json<T: Decodable>(_ type: T.Type, _ column: String) throws -> T? {
            guard let text: String = row[column] else { return nil }
            return try decoder.decode(T.self, from: Data(text.utf8))
        }
        let stateName: String = row["state"]
        guard let state = JobState(rawValue: stateName) else {
            throw HistoryError("job \(row["id"] as Int): unknown state '\(stateName)'")
        }
        return JobRecord(
            id: row["id"], kind: row["kind"], state: state,
            parameters: try json(JSONValue.self, "parameters") ?? .object([:]),
            slots: try json([Int].self, "slots") ?? [],
            submittedAt: row["submittedAt"], startedAt: row["startedAt"], finishedAt: row["finishedAt"],
            progress: nil, result: try json(JSONValue.self, "result"), error: row["error"],
            log: try json([String].self, "log"))
    }
}
