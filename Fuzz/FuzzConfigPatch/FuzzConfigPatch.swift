import Agent
import Control
import Foundation
import JSONLimits
import FuzzSupport
import Inference

/// Any bytes as a `cmd/config` payload, through what the node does with one: JSON, then the merge patch
/// (after the node's nesting guard) planned against the running configuration and a stored override, then the merge itself.
@_cdecl("FuzzConfigPatch_main")
func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    let current = AgentConfig()
    let override = JSONValue.object(["gate": .object(["cry_threshold": .number(0.9)])])
    return Fuzz.run(argc, argv) { bytes in
        guard bytes.count <= 65_536, !JSONNesting.tooDeep(bytes), let value = try? JSONDecoder().decode(JSONValue.self, from: Data(bytes)) else { return }
        _ = MergePatch.apply(value, to: override)
        _ = MergePatch.compose(override, value)
        _ = try? ConfigPatch.plan(patch: value, current: current, override: override)
    }
}
