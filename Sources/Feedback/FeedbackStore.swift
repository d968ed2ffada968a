import Foundation
import SQLite
import Synchronization

/// The node's memory of its episodes (SQLite in the state directory, `feedback.sqlite`): written when an
/// episode starts and again when it ends, labelled by caregivers, read back to teach the node its home and
/// exported to the fleet owner. Durable like the outbox (WAL, every commit fsynced) and bounded: beyond
/// `maxEpisodes` the oldest *unlabelled* episode goes; unlabelled episodes older than `maxAgeDays` go; kept
/// audio beyond `audioMaxBytes` is dropped oldest first. Model updates do not touch it.
///
/// It also never takes the last `diskReserveBytes` of the state disk: the outbox and the open-episode mark
/// live there too, and an event that cannot be stored durably matters more than feedback. (A soak on a
/// 24 MB state disk found the store growing until every event went out without durability.) Past that
/// point the file stops growing and the oldest unlabelled episodes make room for the new one.
public final class FeedbackStore: Sendable {
    public let path: String
    public let maxEpisodes: Int
    public let maxLabelled: Int
    public let maxAge: TimeInterval
    public let audioMaxBytes: Int
    public let diskReserveBytes: Int64
    private let database: Mutex<SQLiteDatabase>

    /// Free space on the state disk the store leaves alone by default.
    public static let defaultDiskReserveBytes: Int64 = 8_000_000

    public init(path: String, settings: FeedbackSettings = FeedbackSettings(),
                diskReserveBytes: Int64 = FeedbackStore.defaultDiskReserveBytes) throws {
        self.path = path
        self.diskReserveBytes = diskReserveBytes
        maxEpisodes = settings.maxEpisodes
        maxLabelled = settings.maxLabelled
        maxAge = settings.maxAgeDays * 86_400
        audioMaxBytes = Int(settings.audioMaxMB * 1_000_000)
        try? FileManager.default.createDirectory(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path,
                                                 withIntermediateDirectories: true)
        let db = try SQLiteDatabase(path: path)
        try db.execute("PRAGMA journal_mode=WAL")
        try db.execute("PRAGMA synchronous=FULL")
        try db.execute("PRAGMA busy_timeout=5000")
        // `seq` orders episodes for export (a cursor that survives deletions); `id` is the episode's UUID.
        try db.execute("""
            CREATE TABLE IF NOT EXISTS episodes (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                started_at REAL NOT NULL,
                ended_at REAL,
                duration_s REAL,
                cry_confidence REAL NOT NULL,
                reason TEXT NOT NULL,
                probabilities TEXT NOT NULL,
                models TEXT NOT NULL,
                dimension INTEGER NOT NULL,
                embeddings BLOB NOT NULL,
                patch_probabilities BLOB NOT NULL,
                label TEXT,
                labelled_at REAL,
                audio BLOB)
            """)
        try db.execute("CREATE INDEX IF NOT EXISTS episodes_started ON episodes (started_at)")
        database = Mutex(db)
    }

    // MARK: - episodes

    /// Stores what the node knows of an episode (at its start, then complete at its end). A label already
    /// given is kept; audio is replaced only when `audio` is given.
    public func record(_ e: FeedbackEpisode, audio: [Int16]? = nil, now: Date = Date()) throws {
        let probabilities = Self.json(e.probabilities), models = Self.json(e.models)
        try database.withLock { db in
            try capGrowth(db)
            try Self.makingRoom(db) {
                try db.transaction {
                    try db.run("""
                        INSERT INTO episodes (id, started_at, ended_at, duration_s, cry_confidence, reason, probabilities, models,
                                              dimension, embeddings, patch_probabilities, audio)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT(id) DO UPDATE SET ended_at = excluded.ended_at, duration_s = excluded.duration_s,
                            cry_confidence = excluded.cry_confidence, reason = excluded.reason, probabilities = excluded.probabilities,
                            models = excluded.models, dimension = excluded.dimension, embeddings = excluded.embeddings,
                            patch_probabilities = excluded.patch_probabilities, audio = COALESCE(excluded.audio, episodes.audio)
                        """, [.text(e.id), .double(e.startedAt.timeIntervalSince1970), e.endedAt.map { .double($0.timeIntervalSince1970) } ?? .null,
                              e.durationS.map { .double($0) } ?? .null, .double(e.cryConfidence), .text(e.reason), .text(probabilities),
                              .text(models), .int(Int64(e.dimension)), .blob(Self.bytes(e.embeddings)),
                              .blob(Self.bytes(e.patchProbabilities.map(Float.init))), audio.map { .blob(Self.bytes($0)) } ?? .null])
                    try prune(db, now: now)
                }
            }
        }
    }

    /// Lets the file grow only into free space beyond the reserve (SQLite's `max_page_count`; it is never
    /// set below the file's current size, so a disk filled by something else freezes the store's size).
    private func capGrowth(_ db: SQLiteDatabase) throws {
        var fs = statvfs()
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        guard statvfs(directory, &fs) == 0 else { return }
        let free = Int64(fs.f_bavail) * Int64(fs.f_frsize)
        let pageSize = Int64(try db.queryInt("PRAGMA page_size"))
        let pages = Int64(try db.queryInt("PRAGMA page_count"))
        let budget = max(pages, pages + (free - diskReserveBytes) / max(1, pageSize))
        _ = try db.queryInt("PRAGMA max_page_count = \(budget)")
    }

    /// Runs `write`; when the file has no room, drops the oldest unlabelled episodes (their pages are reused)
    /// and tries again, a few times with more each time. Labelled episodes are never dropped for room.
    private static func makingRoom(_ db: SQLiteDatabase, _ write: () throws -> Void) throws {
        for attempt in 0..<4 {
            do {
                return try write()
            } catch let error as SQLiteError where error.isFull && attempt < 3 {
                try db.run("DELETE FROM episodes WHERE seq IN (SELECT seq FROM episodes WHERE label IS NULL ORDER BY started_at LIMIT ?)",
                           [.int(Int64(4 << (2 * attempt)))])
                if db.changes == 0 { throw error }
            }
        }
    }

    /// The bounds: unlabelled episodes past the age limit, then the oldest unlabelled beyond `maxEpisodes`,
    /// then audio beyond its budget.
    private func prune(_ db: SQLiteDatabase, now: Date) throws {
        try db.run("DELETE FROM episodes WHERE label IS NULL AND started_at < ?", [.double(now.timeIntervalSince1970 - maxAge)])
        let excess = try db.queryInt("SELECT COUNT(*) FROM episodes") - maxEpisodes
        if excess > 0 {
            try db.run("DELETE FROM episodes WHERE seq IN (SELECT seq FROM episodes WHERE label IS NULL ORDER BY started_at LIMIT ?)",
                       [.int(Int64(excess))])
        }
        var audio = try db.queryInt("SELECT COALESCE(SUM(LENGTH(audio)), 0) FROM episodes")
        while audio > audioMaxBytes {
            let oldest = try db.query("SELECT seq, LENGTH(audio) FROM episodes WHERE audio IS NOT NULL ORDER BY started_at LIMIT 1") {
                ($0.int(0), Int($0.int(1)))
            }
            guard let (seq, size) = oldest.first else { break }
            try db.run("UPDATE episodes SET audio = NULL WHERE seq = ?", [.int(seq)])
            audio -= size
        }
    }

    /// The episode (`"latest"`: the most recent one).
    public func episode(_ id: String) throws -> FeedbackEpisode? {
        try database.withLock { db in
            let sql = id == "latest" ? "SELECT \(Self.columns) FROM episodes ORDER BY started_at DESC, seq DESC LIMIT 1"
                : "SELECT \(Self.columns) FROM episodes WHERE id = ?"
            return try db.query(sql, id == "latest" ? [] : [.text(id)], Self.episode).first
        }
    }

    /// Every labelled episode, oldest first.
    public func labelled() throws -> [FeedbackEpisode] {
        try database.withLock { db in
            try db.query("SELECT \(Self.columns) FROM episodes WHERE label IS NOT NULL ORDER BY started_at", [], Self.episode)
        }
    }

    /// Sets (or with nil withdraws) the label of a stored episode. Refuses an unknown episode, one older
    /// than the age limit, and a new label once `maxLabelled` episodes are labelled.
    @discardableResult
    public func label(_ id: String, as label: String?, now: Date = Date()) throws(FeedbackError) -> FeedbackEpisode {
        do {
            return try database.withLock { db throws(FeedbackError) in
                do {
                    return try db.transaction {
                        let sql = id == "latest" ? "SELECT \(Self.columns) FROM episodes ORDER BY started_at DESC, seq DESC LIMIT 1"
                            : "SELECT \(Self.columns) FROM episodes WHERE id = ?"
                        guard var e = try db.query(sql, id == "latest" ? [] : [.text(id)], Self.episode).first else {
                            throw FeedbackError.unknownEpisode(id)
                        }
                        guard now.timeIntervalSince(e.startedAt) <= maxAge else { throw FeedbackError.tooOld(e.id, days: maxAge / 86_400) }
                        if label != nil, e.label == nil {
                            let labelled = try db.queryInt("SELECT COUNT(*) FROM episodes WHERE label IS NOT NULL")
                            guard labelled < maxLabelled else {
                                throw FeedbackError.storageFull("\(labelled) labelled episodes (feedback.max_labelled); forget some first")
                            }
                        }
                        try db.run("UPDATE episodes SET label = ?, labelled_at = ? WHERE id = ?",
                                   [label.map { .text($0) } ?? .null, label == nil ? .null : .double(now.timeIntervalSince1970), .text(e.id)])
                        e.label = label
                        e.labelledAt = label == nil ? nil : now
                        return e
                    }
                } catch let error as FeedbackError { throw error } catch { throw Self.storeError(error) }
            }
        }
    }

    /// Erases one episode (`"latest"` allowed), audio and all; returns its id, nil when unknown.
    public func forget(_ id: String) throws -> String? {
        guard let e = try episode(id) else { return nil }
        try database.withLock { db in try db.run("DELETE FROM episodes WHERE id = ?", [.text(e.id)]) }
        return e.id
    }

    /// Erases everything; returns how many episodes there were.
    @discardableResult
    public func forgetAll() throws -> Int {
        try database.withLock { db in
            let n = try db.queryInt("SELECT COUNT(*) FROM episodes")
            try db.run("DELETE FROM episodes")
            try db.execute("VACUUM")
            return n
        }
    }

    /// Counts for `info`: episodes stored, and labelled ones per label.
    public func counts() throws -> (episodes: Int, labels: [String: Int]) {
        try database.withLock { db in
            let total = try db.queryInt("SELECT COUNT(*) FROM episodes")
            var labels: [String: Int] = [:]
            for (l, n) in try db.query("SELECT label, COUNT(*) FROM episodes WHERE label IS NOT NULL GROUP BY label", [], { ($0.text(0), Int($0.int(1))) }) {
                labels[l] = n
            }
            return (total, labels)
        }
    }

    /// Labelled episodes after export cursor `after` (a `seq`), oldest first, until `maxBytes` of embeddings
    /// and audio (at least one episode). Returns them with their cursor and audio.
    public func exportPage(after: Int64, maxBytes: Int) throws -> [(seq: Int64, episode: FeedbackEpisode, audio: [Int16]?)] {
        try database.withLock { db in
            var page: [(Int64, FeedbackEpisode, [Int16]?)] = []
            var bytes = 0
            let rows = try db.query("SELECT seq, \(Self.columns), audio FROM episodes WHERE label IS NOT NULL AND seq > ? ORDER BY seq LIMIT 200",
                                    [.int(after)]) { row -> (Int64, FeedbackEpisode, [Int16]?) in
                let e = Self.episode(row, offset: 1)
                let audio: [Int16]? = row.isNull(16) ? nil : Self.int16s(row.blob(16))
                return (row.int(0), e, audio)
            }
            for r in rows {
                let size = r.1.embeddings.count * 4 + (r.2?.count ?? 0) * 2 + 2048
                if !page.isEmpty, bytes + size > maxBytes { break }
                page.append(r)
                bytes += size
            }
            return page
        }
    }

    // MARK: - rows

    private static let columns = """
        id, started_at, ended_at, duration_s, cry_confidence, reason, probabilities, models, dimension, embeddings, \
        patch_probabilities, label, labelled_at, COALESCE(LENGTH(audio), 0)
        """

    private static func episode(_ row: SQLiteDatabase.Row) -> FeedbackEpisode { episode(row, offset: 0) }

    private static func episode(_ row: SQLiteDatabase.Row, offset o: Int32) -> FeedbackEpisode {
        FeedbackEpisode(id: row.text(o), startedAt: Date(timeIntervalSince1970: row.double(o + 1)),
                        endedAt: row.isNull(o + 2) ? nil : Date(timeIntervalSince1970: row.double(o + 2)),
                        durationS: row.isNull(o + 3) ? nil : row.double(o + 3), cryConfidence: row.double(o + 4), reason: row.text(o + 5),
                        probabilities: decode(row.text(o + 6)) ?? [:], models: decode(row.text(o + 7)) ?? [:],
                        embeddings: floats(row.blob(o + 9)), dimension: Int(row.int(o + 8)),
                        patchProbabilities: floats(row.blob(o + 10)).map(Double.init),
                        label: row.isNull(o + 11) ? nil : row.text(o + 11),
                        labelledAt: row.isNull(o + 12) ? nil : Date(timeIntervalSince1970: row.double(o + 12)),
                        audioBytes: Int(row.int(o + 13)))
    }

    private static func json<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    private static func decode<T: Decodable>(_ text: String) -> T? { try? JSONDecoder().decode(T.self, from: Data(text.utf8)) }

    /// Little-endian bytes of a numeric array (the platforms the node runs on are little-endian).
    static func bytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }
    static func bytes(_ values: [Float]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

    static func floats(_ bytes: [UInt8]) -> [Float] {
        [Float](unsafeUninitializedCapacity: bytes.count / 4) { buffer, count in
            count = bytes.count / 4
            bytes.withUnsafeBytes { raw in
                for i in 0..<count { buffer[i] = raw.loadUnaligned(fromByteOffset: i * 4, as: Float.self) }
            }
        }
    }

    static func int16s(_ bytes: [UInt8]) -> [Int16] {
        [Int16](unsafeUninitializedCapacity: bytes.count / 2) { buffer, count in
            count = bytes.count / 2
            bytes.withUnsafeBytes { raw in
                for i in 0..<count { buffer[i] = raw.loadUnaligned(fromByteOffset: i * 2, as: Int16.self) }
            }
        }
    }

    /// A full disk is "storage full" to the caregiver; anything else is a store failure.
    static func storeError(_ error: any Error) -> FeedbackError {
        if let e = error as? SQLiteError, e.code == 13 { return .storageFull("the state disk is full") }
        return .storeFailed("\(error)")
    }
}
