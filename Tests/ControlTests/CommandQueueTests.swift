import Control
import Foundation
import Messaging
import Testing
import TestSupport

extension NodeTests {
    /// CI lost results when 300 commands arrived faster than the node handled them: the queue between the MQTT
    /// thread and the control service dropped the overflow without a word. Every command must be answered.
    @Test("a flood of commands: each is answered once, the overflow with busy, and the node keeps answering")
    func floodIsAnswered() async throws {
        let node = try await TestNode(commandQueue: 4)
        let recorder = try await Recorder(node.broker, filters: ["deepinfant/nursery/result"])
        let count = 200
        for i in 0..<count {
            let payload = #"{"gate":{"cry_threshold":\#(i % 2 == 0 ? "0.6" : "0.7")},"request_id":"flood-\#(i)"}"#
            try await node.fleet.client.publish(topic: "deepinfant/nursery/cmd/config", payload: Array(payload.utf8), qos: .atLeastOnce)
        }
        func answers(_ messages: [MQTTMessage]) -> [CommandResult] {
            messages.compactMap { try? CommandResult.decode($0.payload) }.filter { $0.requestID?.hasPrefix("flood-") == true }
        }
        try await recorder.wait(timeout: .seconds(120), "\(count) results") { answers($0).count >= count }
        let results = answers(recorder.messages)
        #expect(Set(results.compactMap(\.requestID)).count == count, "one answer per request")
        #expect(results.count == count)
        let busy = results.filter { $0.error == "busy" }
        #expect(!busy.isEmpty, "a queue of 4 overflows when 200 commands arrive at once")
        #expect(busy.allSatisfy { !$0.ok && $0.nodeID == "nursery" && $0.message != nil })
        let ran = results.filter { $0.error != "busy" }
        #expect(ran.allSatisfy { $0.ok }, "the rest ran")
        print("flood: \(count) commands, \(busy.count) answered busy")

        let ping = try await node.send("ping", json: "{}")
        #expect(ping.ok)
        await recorder.stop()
        try await node.stop()
    }
}
