import PoolProtocol

/// Counts the open control connections, in total and per peer uid, and says which may be served.
/// Lives on the event loop (every connection does), so it needs no lock.
///
/// A connection over a limit is not dropped at accept time: the client would see a bare EOF or
/// EPIPE and no reason. It is kept just long enough to answer its first call with
/// `TooManyConnections` (or until the client timeout), then closed. Such connections are bounded
/// too: beyond `maxConnections` of them, further ones are closed at once, without a word.
final class ConnectionLimiter {
    private let maxConnections: Int
    private let maxPerUID: Int
    private var total = 0
    private var perUID: [UInt32: Int] = [:]
    private var refusing = 0

    enum Admission {
        case admitted
        /// Answer the first call with this error, then close.
        case refused(PoolError)
        /// Close at once: even the refusals are over their bound.
        case dropped
    }

    init(maxConnections: Int, maxPerUID: Int) {
        self.maxConnections = maxConnections
        self.maxPerUID = maxPerUID
    }

    func admit(uid: UInt32) -> Admission {
        let mine = perUID[uid, default: 0]
        let refusal: PoolError
        if total >= maxConnections {
            refusal = .tooManyConnections(limit: maxConnections, "\(total) connections are open, the daemon's limit (--max-connections \(maxConnections)); close some (a `poolctl status --follow`, a waiting `poolctl run`) or raise the limit")
        } else if mine >= maxPerUID {
            refusal = .tooManyConnections(limit: maxPerUID, "uid \(uid) has \(mine) connections open, the limit for one user (--max-connections-per-uid \(maxPerUID)); close some of them or raise the limit")
        } else {
            total += 1
            perUID[uid] = mine + 1
            return .admitted
        }
        guard refusing < maxConnections else { return .dropped }
        refusing += 1
        return .refused(refusal)
    }

    /// An admitted connection closed.
    func release(uid: UInt32) {
        total -= 1
        let remaining = perUID[uid, default: 1] - 1
        perUID[uid] = remaining > 0 ? remaining : nil
    }

    /// A refused connection closed.
    func releaseRefused() {
        refusing -= 1
    }
}
