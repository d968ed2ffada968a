import CSQLite

/// Errors from SQLite, with its message.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    public let code: Int32
    public let message: String
    public var description: String { "database error \(code): \(message)" }
    /// SQLITE_FULL: the disk, or the file's `max_page_count`, has no room.
    public var isFull: Bool { code == SQLITE_FULL }
}

/// The few SQLite calls the node's stores need (the outbox, the feedback store). Not thread-safe by itself:
/// each store keeps its connection behind a mutex.
public final class SQLiteDatabase {
    public enum Value {
        case int(Int64), double(Double), text(String), blob([UInt8]), null
    }

    public struct Row {
        let statement: OpaquePointer
        public func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }
        public func int(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }
        public func double(_ column: Int32) -> Double { sqlite3_column_double(statement, column) }
        public func text(_ column: Int32) -> String {
            sqlite3_column_text(statement, column).map { String(cString: $0) } ?? ""
        }
        public func blob(_ column: Int32) -> [UInt8] {
            let count = Int(sqlite3_column_bytes(statement, column))
            guard count > 0, let bytes = sqlite3_column_blob(statement, column) else { return [] }
            return Array(UnsafeRawBufferPointer(start: bytes, count: count))
        }
    }

    private let handle: OpaquePointer

    public init(path: String) throws {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open \(path)"
            sqlite3_close(handle)
            throw SQLiteError(code: rc, message: "\(message) (\(path))")
        }
        self.handle = handle
    }

    deinit { sqlite3_close_v2(handle) }

    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    /// Rows changed by the last INSERT/UPDATE/DELETE.
    public var changes: Int { Int(sqlite3_changes(handle)) }

    private func error(_ rc: Int32) -> SQLiteError {
        SQLiteError(code: rc, message: String(cString: sqlite3_errmsg(handle)))
    }

    public func execute(_ sql: String) throws {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error(rc) }
    }

    public func transaction<T>(_ body: () throws -> T) throws -> T {
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
            case .null: bindRC = sqlite3_bind_null(statement, index)
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

    public func run(_ sql: String, _ values: [Value] = []) throws {
        let statement = try prepare(sql, values)
        defer { sqlite3_finalize(statement) }
        let rc = sqlite3_step(statement)
        guard rc == SQLITE_DONE || rc == SQLITE_ROW else { throw error(rc) }
    }

    public func query<T>(_ sql: String, _ values: [Value] = [], _ map: (Row) -> T) throws -> [T] {
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

    public func queryInt(_ sql: String, _ values: [Value] = []) throws -> Int {
        Int(try query(sql, values) { $0.int(0) }.first ?? 0)
    }
}
