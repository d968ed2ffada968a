import Foundation
import JSONLimits

/// Decodes a model file's `deepinfant` document into any of the metadata types (CRNN, YAMNet body,
/// embedding head); a decoding error becomes a `ModelError` naming the key as the file spells it.
enum MetadataDecoding {
    static func decode<T: Decodable>(_ type: T.Type, json: String) throws(ModelError) -> T {
        let dec = JSONDecoder()
        dec.keyDecodingStrategy = .convertFromSnakeCase
        let metadataKey = ModelMetadata.metadataKey
        // The document is a string inside the header, so the header's nesting check did not look into it.
        guard !JSONNesting.tooDeep(json.utf8) else {
            throw .invalidMetadata(key: metadataKey, reason: "not valid JSON: nested deeper than \(JSONNesting.limit) levels")
        }
        do {
            return try dec.decode(T.self, from: Data(json.utf8))
        } catch let e as DecodingError {
            func path(_ c: DecodingError.Context, _ extra: (any CodingKey)? = nil) -> String {
                let keys = c.codingPath + (extra.map { [$0] } ?? [])
                let p = keys.map { $0.intValue.map { "[\($0)]" } ?? snake($0.stringValue) }.joined(separator: ".")
                return p.replacingOccurrences(of: ".[", with: "[")
            }
            switch e {
            case let .keyNotFound(k, c): throw .missingMetadata(key: path(c, k))
            case let .valueNotFound(_, c): throw .missingMetadata(key: path(c))
            case let .typeMismatch(t, c): throw .invalidMetadata(key: path(c), reason: "expected \(t)")
            case let .dataCorrupted(c):
                if c.codingPath.isEmpty { throw .invalidMetadata(key: metadataKey, reason: "not valid JSON: \(SafeTensorsFile.shortReason(e))") }
                throw .invalidMetadata(key: path(c), reason: c.debugDescription)
            @unknown default: throw .invalidMetadata(key: metadataKey, reason: String(describing: e))
            }
        } catch {
            throw .invalidMetadata(key: metadataKey, reason: String(describing: error))
        }
    }
}

/// camelCase → snake_case for error messages (the file's spelling).
private func snake(_ s: String) -> String {
    var out = ""
    for ch in s {
        if ch.isUppercase { out += "_" + ch.lowercased() } else { out.append(ch) }
    }
    return out
}
