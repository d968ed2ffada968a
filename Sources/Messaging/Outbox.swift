import CSQLite
import Foundation
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

/// Errors from SQLite, with its message.
public struct OutboxError: Error, CustomStringConvertible, Sendable {
    public let code: Int32
    public let message: String
    public var description: String { "outbox database error \(code): \(message)" }
}

/// The few SQLite calls the outbox needs. Not thread-safe by itself; `Outbox` keeps it behind a mutex.
final class SQLiteDatabase {
    enum Value {
        case int(Int64), double(Double), text(String), blob([UInt8])
    }

    struct Row {
        let statement: OpaquePointer
        func int(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }
        func double(_ column: Int32) -> Double { sqlite3_column_double(statement, column) }
        func text(_ column: Int32) -> String {
            sqlite3_column_text(statement, column).map { String(cString: $0) } ?? ""
        }
        func blob(_ column: Int32) -> [UInt8] {
            let count = Int(sqlite3_column_bytes(statement, column))
            guard count > 0, let bytes = sqlite3_column_blob(statement, column) else { return [] }
            return Array(UnsafeRawBufferPointer(start: bytes, count: count))
        }
    }

    private let handle: OpaquePointer

    init(path: String) throws {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open \(path)"
            sqlite3_close(handle)
            throw OutboxError(code: rc, message: "\(message) (\(path))")
        }
        self.handle = handle
    }

    deinit { sqlite3_close_v2(handle) }

    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    private func error(_ rc: Int32) -> OutboxError {
        OutboxError(code: rc, message: String(cString: sqlite3_errmsg(handle)))
    }

    func execute(_ sql: String) throws {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error(rc) }
    }

    func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    private func prepare(_ sql: String, _ values: [Value]) throws -> OpaquePointer {
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw error(rc) }
        // SQLITE_TRANSIENT: SQLite copies the bytes, so Swift's buffers may go away after binding.
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let bindRC: Int32
            switch value {
            case let .int(number): bindRC = sqlite3_bind_int64(statement, index, number)
            case let .double(number): bindRC = sqlite3_bind_double(statement, index, number)
            case let .text(text): bindRC = sqlite3_bind_text(statement, index, text, -1, transient)
            case let .blob(bytes):
                bindRC = bytes.withUnsafeBytes { buffer in
                    sqlite3_bind_blob(statement, index, buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1),
                                      Int32(buffer.count), transient)
                }
            }
            guard bindRC == SQLITE_OK else {
                sqlite3_finalize(statement)
                throw error(bindRC)
            }
        }
        return statement
    }

    func run(_ sql: String, _ values: [Value] = []) throws {
        let statement = try prepare(sql, values)
        defer { sqlite3_finalize(statement) }
        let rc = sqlite3_step(statement)
        guard rc == SQLITE_DONE || rc == SQLITE_ROW else { throw error(rc) }
    }

    func query<T>(_ sql: String, _ values: [Value] = [], _ map: (Row) -> T) throws -> [T] {
        let statement = try prepare(sql, values)
        defer { sqlite3_finalize(statement) }
        var rows: [T] = []
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc) }
            rows.append(map(Row(statement: statement)))
        }
        return rows
    }

    func queryInt(_ sql: String, _ values: [Value] = []) throws -> Int {
        Int(try query(sql, values) { $0.int(0) }.first ?? 0)
    }
}
