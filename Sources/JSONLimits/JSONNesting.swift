/// How deeply a JSON text nests arrays and objects, found without parsing it. Foundation's JSON scanner stops
/// the process (instead of throwing) on 513 nested arrays (deploy/fuzz.sh: a `cmd/config` payload of 513 `[`
/// crashed the node), so every payload from outside is measured first and refused beyond `limit`.
public enum JSONNesting {
    /// The deepest nesting of `[`/`{` outside strings, stopping early once past `limit`.
    public static func depth<C: Collection>(_ bytes: C, limit: Int = .max) -> Int where C.Element == UInt8 {
        var depth = 0, deepest = 0
        var inString = false, escaped = false
        for b in bytes {
            if inString {
                if escaped { escaped = false } else if b == 0x5C { escaped = true } else if b == 0x22 { inString = false }
                continue
            }
            switch b {
            case 0x22: inString = true
            case 0x5B, 0x7B:
                depth += 1
                if depth > deepest { deepest = depth; if deepest > limit { return deepest } }
            case 0x5D, 0x7D: depth = max(0, depth - 1)
            default: break
            }
        }
        return deepest
    }

    /// The nesting every outside JSON input may have: far more than any command, config or model metadata needs.
    public static let limit = 64

    /// Thrown where a decode is refused for nesting.
    public struct TooDeep: Error, CustomStringConvertible {
        public init() {}
        public var description: String { "JSON nested deeper than \(JSONNesting.limit) levels" }
    }

    public static func tooDeep<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 { depth(bytes, limit: limit) > limit }
}
