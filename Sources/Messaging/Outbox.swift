import Foundation
import SQLite
import Synchronization

/// The durable queue behind "nothing lost": every event is committed here before it is published and deleted
/// only after the broker has acknowledged it, so a dead broker, a dropped Wi-Fi or a SIGKILL between
/// detection and PUBACK leaves the event on disk, to be sent (in order) after reconnect or restart.
///
/// SQLite in WAL mode with `synchronous=FULL`: every commit is fsynced, so an event survives a power cut as
/// well as a crash. Events arrive a few times a minute at most, so the fsync per event costs nothing that
/// matters; `NORMAL` would only protect against process crashes, not against the power cuts an edge box sees.
///
/// Bounded: when `bound` rows are waiting, appending drops the oldest row and counts it in ``droppedCount``
/// (persisted, so the count survives restarts and can be shown in `info`).
public final class Outbox: Sendable {
    /// One stored message.
    public struct Entry: Sendable, Equatable {
        /// Strictly increasing (AUTOINCREMENT), so ordering by id is publish order even across deletions.
        public var id: Int64
        public var topic: String
        public var payload: [UInt8]
        public var qos: MQTTQoS
        public var retain: Bool
        public var createdAt: Date
    }

    public let path: String
    public let bound: Int
    private let database: Mutex<SQLiteDatabase>

    /// Opens (creating if needed) the outbox at `path`. `bound` is the most rows kept; at least 1.
    public init(path: String, bound: Int = 10_000) throws {
        self.path = path
        self.bound = max(1, bound)
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let database = try SQLiteDatabase(path: path)
        try database.execute("PRAGMA journal_mode=WAL")
        try database.execute("PRAGMA synchronous=FULL")
        try database.execute("PRAGMA busy_timeout=5000")
        try database.execute("""
            CREATE TABLE IF NOT EXISTS outbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                topic TEXT NOT NULL,
                payload BLOB NOT NULL,
                qos INTEGER NOT NULL,
                retain INTEGER NOT NULL,
                created_at REAL NOT NULL)
            """)
        try database.execute("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        try database.execute("INSERT OR IGNORE INTO counters (name, value) VALUES ('dropped', 0)")
        self.database = Mutex(database)
    }

    /// Stores a message and returns its entry. Drops the oldest rows first when the bound is reached.
    @discardableResult
    public func append(topic: String, payload: [UInt8], qos: MQTTQoS = .atLeastOnce, retain: Bool = false,
                       createdAt: Date = Date()) throws -> Entry {
        try database.withLock { db in
            try db.transaction {
                let count = try db.queryInt("SELECT COUNT(*) FROM outbox")
                let excess = count - bound + 1
                if excess > 0 {
                    try db.run("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)",
                               [.int(Int64(excess))])
                    try db.run("UPDATE counters SET value = value + ? WHERE name = 'dropped'", [.int(Int64(excess))])
                }
                try db.run("INSERT INTO outbox (topic, payload, qos, retain, created_at) VALUES (?, ?, ?, ?, ?)",
                           [.text(topic), .blob(payload), .int(Int64(qos.rawValue)), .int(retain ? 1 : 0),
                            .double(createdAt.timeIntervalSince1970)])
                return Entry(id: db.lastInsertRowID, topic: topic, payload: payload, qos: qos, retain: retain,
                             createdAt: createdAt)
            }
        }
    }

    /// Up to `limit` entries with id greater than `afterID`, oldest first.
    public func pending(after afterID: Int64 = 0, limit: Int = 100) throws -> [Entry] {
        try database.withLock { db in
            try db.query("SELECT id, topic, payload, qos, retain, created_at FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                         [.int(afterID), .int(Int64(limit))]) { row in
                Entry(id: row.int(0), topic: row.text(1), payload: row.blob(2),
                      qos: MQTTQoS(rawValue: Int32(row.int(3))) ?? .atLeastOnce, retain: row.int(4) != 0,
                      createdAt: Date(timeIntervalSince1970: row.double(5)))
            }
        }
    }

    /// Deletes an acknowledged entry. Deleting an id that is gone (dropped meanwhile) is not an error.
    public func remove(id: Int64) throws {
        try database.withLock { db in try db.run("DELETE FROM outbox WHERE id = ?", [.int(id)]) }
    }

    /// Rows waiting to be acknowledged.
    public func count() throws -> Int {
        try database.withLock { db in try db.queryInt("SELECT COUNT(*) FROM outbox") }
    }

    /// Rows dropped (oldest first) because the outbox was full, since it was created.
    public func droppedCount() throws -> Int {
        try database.withLock { db in try db.queryInt("SELECT value FROM counters WHERE name = 'dropped'") }
    }
}

/// The outbox's errors are SQLite's.
public typealias OutboxError = SQLiteError
