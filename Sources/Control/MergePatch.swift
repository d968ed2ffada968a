import Inference

/// JSON merge patch (RFC 7396), the payload of `cmd/config` and of Home Assistant's `number` entities.
///
/// Two operations: ``apply(_:to:)`` is the RFC's algorithm (a `null` member deletes the key, an object
/// merges recursively, anything else replaces). ``compose(_:_:)`` folds a new patch into an older one while
/// keeping its `null`s, because the persisted override is itself a patch applied on top of the TOML file at
/// the next start: dropping a `null` there would let the file's value come back.
public enum MergePatch {
    /// RFC 7396 §2 `MergePatch(Target, Patch)`.
    public static func apply(_ patch: JSONValue, to target: JSONValue) -> JSONValue {
        guard case let .object(patchMembers) = patch else { return patch }
        var result: [String: JSONValue]
        if case let .object(targetMembers) = target { result = targetMembers } else { result = [:] }
        for (key, value) in patchMembers {
            if value == .null {
                result.removeValue(forKey: key)
            } else {
                result[key] = apply(value, to: result[key] ?? .null)
            }
        }
        return .object(result)
    }

    /// A patch equivalent to applying `first`, then `second` (for targets whose objects stay objects, as a
    /// configuration's sections do).
    public static func compose(_ first: JSONValue, _ second: JSONValue) -> JSONValue {
        guard case let .object(secondMembers) = second else { return second }
        guard case var result = first, case .object(var members) = result else { return second }
        for (key, value) in secondMembers {
            if case .object = value, let old = members[key], case .object = old {
                members[key] = compose(old, value)
            } else {
                members[key] = value
            }
        }
        result = .object(members)
        return result
    }
}
