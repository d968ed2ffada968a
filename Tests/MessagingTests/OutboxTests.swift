import Foundation
import Testing
@testable import Messaging

@Suite("Outbox (SQLite)")
struct OutboxTests {
    @Test func keepsOrderRemovesAcknowledgedAndSurvivesReopen() throws {
        let path = try TestFiles.temporaryDirectory("outbox").appendingPathComponent("outbox.sqlite").path
        do {
            let outbox = try Outbox(path: path, bound: 100)
            for index in 0..<5 { try outbox.append(topic: "t", payload: Array("e\(index)".utf8)) }
            let pending = try outbox.pending()
            #expect(pending.map { String(decoding: $0.payload, as: UTF8.self) } == ["e0", "e1", "e2", "e3", "e4"])
            try outbox.remove(id: pending[0].id)
            try outbox.remove(id: pending[2].id)
            #expect(try outbox.pending(after: pending[1].id, limit: 1).map(\.id) == [pending[3].id])
        }
        let reopened = try Outbox(path: path, bound: 100)
        #expect(try reopened.pending().map { String(decoding: $0.payload, as: UTF8.self) } == ["e1", "e3", "e4"])
        // New rows sort after old ones even though lower ids were deleted (AUTOINCREMENT).
        let newest = try reopened.append(topic: "t", payload: Array("e5".utf8))
        #expect(newest.id > (try reopened.pending().dropLast().map(\.id).max() ?? 0))
    }

    @Test func boundDropsOldestAndCountsDrops() throws {
        let path = try TestFiles.temporaryDirectory("outbox").appendingPathComponent("bounded.sqlite").path
        do {
            let outbox = try Outbox(path: path, bound: 3)
            for index in 0..<5 { try outbox.append(topic: "t", payload: [UInt8(index)]) }
            #expect(try outbox.count() == 3)
            #expect(try outbox.droppedCount() == 2)
            #expect(try outbox.pending().map(\.payload) == [[2], [3], [4]])
        }
        #expect(try Outbox(path: path, bound: 3).droppedCount() == 2)
    }

    @Test func usesWALWithFullSync() throws {
        let path = try TestFiles.temporaryDirectory("outbox").appendingPathComponent("wal.sqlite").path
        let outbox = try Outbox(path: path, bound: 10)
        try outbox.append(topic: "t", payload: [1])
        #expect(FileManager.default.fileExists(atPath: path + "-wal"))
    }
}
