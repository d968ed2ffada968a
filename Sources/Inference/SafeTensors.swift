import Foundation
import JSONLimits

/// A parsed safetensors container: 8-byte little-endian header length N, N bytes of JSON header, then
/// the raw tensor bytes. Parsing validates the container fully (offsets in range, contiguous, no
/// overlap, sizes matching shape × dtype) before anything reads tensor data, so a corrupt or hostile
/// file produces a `ModelError` instead of an out-of-bounds read.
public struct SafeTensorsFile: Sendable {
    /// One tensor's header entry.
    public struct TensorInfo: Sendable, Equatable {
        public var name: String
        public var dtype: String
        public var shape: [Int]
        /// Byte range inside the data section (after the header).
        public var dataRange: Range<Int>
        public var elementCount: Int { shape.reduce(1, *) }
    }

    /// Largest header accepted (the format's own reference implementation uses 100 MB).
    public static let maxHeaderLength = 100_000_000

    /// `__metadata__`: string → string, as the format requires.
    public let metadata: [String: String]
    /// Tensor entries by name.
    public let tensors: [String: TensorInfo]
    /// The whole file.
    let bytes: [UInt8]
    /// Offset of the data section inside `bytes`.
    let dataStart: Int

    /// Bytes per element of the dtypes the format defines (others are rejected as unknown).
    static let dtypeSizes: [String: Int] = [
        "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
        "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8,
    ]

    public init(bytes: [UInt8]) throws(ModelError) {
        guard bytes.count >= 8 else { throw .truncated(reason: "\(bytes.count) bytes, need at least 8 for the header length") }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard n >= 2, n <= UInt64(Self.maxHeaderLength), n <= UInt64(bytes.count - 8) else {
            if n >= 2, n <= UInt64(Self.maxHeaderLength) {
                throw .truncated(reason: "header length \(n) runs past the end of the \(bytes.count)-byte file")
            }
            throw .invalidHeaderLength(declared: n, fileSize: bytes.count)
        }
        let headerEnd = 8 + Int(n)
        let headerBytes = bytes[8..<headerEnd]
        let root: JSONValue
        guard !JSONNesting.tooDeep(headerBytes) else {
            throw .headerNotJSON(reason: "nested deeper than \(JSONNesting.limit) levels")
        }
        do {
            root = try JSONDecoder().decode(JSONValue.self, from: Data(headerBytes))
        } catch {
            throw .headerNotJSON(reason: Self.shortReason(error))
        }
        guard case let .object(entries) = root else { throw .headerNotObject }

        var metadata: [String: String] = [:]
        var tensors: [String: TensorInfo] = [:]
        let dataSize = bytes.count - headerEnd
        for (key, value) in entries {
            if key == "__metadata__" {
                guard case let .object(m) = value else { throw .invalidHeaderEntry(key: key, reason: "must be an object of strings") }
                for (mk, mv) in m {
                    guard case let .string(s) = mv else { throw .invalidHeaderEntry(key: "__metadata__.\(mk)", reason: "value must be a string") }
                    metadata[mk] = s
                }
                continue
            }
            guard case let .object(e) = value else { throw .invalidHeaderEntry(key: key, reason: "tensor entry must be an object") }
            guard case let .string(dtype)? = e["dtype"] else { throw .invalidHeaderEntry(key: key, reason: "missing string \"dtype\"") }
            guard let elemSize = Self.dtypeSizes[dtype] else { throw .unsupportedDType(tensor: key, dtype: dtype) }
            guard case let .array(shapeJSON)? = e["shape"], shapeJSON.count <= 8 else {
                throw .invalidHeaderEntry(key: key, reason: "missing or invalid \"shape\" (an array of at most 8 sizes)")
            }
            var shape: [Int] = []
            var count = 1
            for s in shapeJSON {
                guard let d = s.exactNonNegativeInt, d <= Int(Int32.max) else {
                    throw .invalidHeaderEntry(key: key, reason: "shape entries must be non-negative integers")
                }
                shape.append(d)
                let (p, o) = count.multipliedReportingOverflow(by: d)
                guard !o, p <= Int(Int32.max) else { throw .invalidHeaderEntry(key: key, reason: "shape \(shape) is too large") }
                count = p
            }
            guard case let .array(off)? = e["data_offsets"], off.count == 2,
                  let begin = off[0].exactNonNegativeInt, let end = off[1].exactNonNegativeInt else {
                throw .invalidDataOffsets(tensor: key, reason: "must be two non-negative integers")
            }
            guard begin <= end, end <= dataSize else {
                throw .invalidDataOffsets(tensor: key, reason: "[\(begin), \(end)] outside the \(dataSize)-byte data section")
            }
            guard end - begin == count * elemSize else {
                throw .invalidDataOffsets(tensor: key, reason: "\(end - begin) bytes for shape \(shape) of \(dtype) (need \(count * elemSize))")
            }
            tensors[key] = TensorInfo(name: key, dtype: dtype, shape: shape, dataRange: begin..<end)
        }
        // The data section must be exactly the tensors laid end to end: no overlap, no holes.
        var cursor = 0
        for t in tensors.values.sorted(by: { ($0.dataRange.lowerBound, $0.dataRange.upperBound) < ($1.dataRange.lowerBound, $1.dataRange.upperBound) }) {
            guard t.dataRange.lowerBound == cursor else {
                throw .invalidDataOffsets(tensor: t.name, reason: t.dataRange.lowerBound < cursor ? "overlaps another tensor" : "leaves a gap before it")
            }
            cursor = t.dataRange.upperBound
        }
        guard cursor == dataSize else {
            throw .invalidDataOffsets(tensor: "(end of file)", reason: "\(dataSize - cursor) trailing bytes after the last tensor")
        }
        self.metadata = metadata
        self.tensors = tensors
        self.bytes = bytes
        self.dataStart = headerEnd
    }

    /// Reads a file and parses it.
    public init(contentsOf path: String) throws(ModelError) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .unreadable(path: path, reason: Self.shortReason(error))
        }
        try self.init(bytes: [UInt8](data))
    }

    /// The tensor's values as Float32 (F32 only; call after checking `dtype`).
    public func floats(_ name: String) throws(ModelError) -> [Float] {
        guard let t = tensors[name] else { throw .missingTensor(name: name) }
        guard t.dtype == "F32" else { throw .unsupportedDType(tensor: name, dtype: t.dtype) }
        let n = t.elementCount
        let start = dataStart + t.dataRange.lowerBound
        return [Float](unsafeUninitializedCapacity: n) { out, initialized in
            bytes.withUnsafeBytes { raw in
                for i in 0..<n {
                    let bits = raw.loadUnaligned(fromByteOffset: start + 4 * i, as: UInt32.self)
                    out[i] = Float(bitPattern: UInt32(littleEndian: bits))
                }
            }
            initialized = n
        }
    }

    /// Runs `body` on the tensor's signed bytes in place (I8 only), without copying them.
    public func withInt8s<T>(_ name: String, _ body: (UnsafeBufferPointer<Int8>) -> T) throws(ModelError) -> T {
        guard let t = tensors[name] else { throw .missingTensor(name: name) }
        guard t.dtype == "I8" else { throw .unsupportedDType(tensor: name, dtype: t.dtype) }
        let start = dataStart + t.dataRange.lowerBound
        return bytes.withUnsafeBytes { raw in
            body(UnsafeBufferPointer(start: (raw.baseAddress! + start).assumingMemoryBound(to: Int8.self), count: t.elementCount))
        }
    }

    /// The tensor's values as signed bytes (I8 only: quantised weights of the YAMNet body).
    public func int8s(_ name: String) throws(ModelError) -> [Int8] {
        guard let t = tensors[name] else { throw .missingTensor(name: name) }
        guard t.dtype == "I8" else { throw .unsupportedDType(tensor: name, dtype: t.dtype) }
        let start = dataStart + t.dataRange.lowerBound
        let n = t.elementCount
        return [Int8](unsafeUninitializedCapacity: n) { out, initialized in
            bytes.withUnsafeBytes { raw in
                if n > 0 { UnsafeMutableRawPointer(out.baseAddress!).copyMemory(from: raw.baseAddress! + start, byteCount: n) }
            }
            initialized = n
        }
    }

    static func shortReason(_ error: any Error) -> String {
        if let e = error as? DecodingError {
            switch e {
            case let .dataCorrupted(c), let .keyNotFound(_, c), let .typeMismatch(_, c), let .valueNotFound(_, c):
                let under = (c.underlyingError as? NSError)?.userInfo[NSDebugDescriptionErrorKey] as? String
                return [c.debugDescription, under].compactMap { $0 }.joined(separator: ": ")
            @unknown default: break
            }
        }
        return String(describing: error).prefix(200).description
    }
}

/// Builds a safetensors file in memory (tests, tools). Tensors are laid out in name order.
public enum SafeTensorsWriter {
    public static func encode(tensors: [(name: String, shape: [Int], values: [Float])], metadata: [String: String]) -> [UInt8] {
        var header: [String: JSONValue] = ["__metadata__": .object(metadata.mapValues { .string($0) })]
        var data: [UInt8] = []
        for t in tensors.sorted(by: { $0.name < $1.name }) {
            let begin = data.count
            for v in t.values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
            header[t.name] = .object([
                "dtype": .string("F32"),
                "shape": .array(t.shape.map { .number(Double($0)) }),
                "data_offsets": .array([.number(Double(begin)), .number(Double(data.count))]),
            ])
        }
        var h = Array(JSONValue.object(header).jsonText.utf8)
        while h.count % 8 != 0 { h.append(UInt8(ascii: " ")) }
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(h.count).littleEndian) { out.append(contentsOf: $0) }
        return out + h + data
    }
}

extension SafeTensorsWriter {
    /// Any dtype, raw little-endian bytes per tensor (tests of unsupported dtypes, tools).
    public static func encodeRaw(tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])], metadata: [String: String]) -> [UInt8] {
        var header: [String: JSONValue] = ["__metadata__": .object(metadata.mapValues { .string($0) })]
        var data: [UInt8] = []
        for t in tensors.sorted(by: { $0.name < $1.name }) {
            let begin = data.count
            data += t.bytes
            header[t.name] = .object([
                "dtype": .string(t.dtype),
                "shape": .array(t.shape.map { .number(Double($0)) }),
                "data_offsets": .array([.number(Double(begin)), .number(Double(data.count))]),
            ])
        }
        var h = Array(JSONValue.object(header).jsonText.utf8)
        while h.count % 8 != 0 { h.append(UInt8(ascii: " ")) }
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(h.count).littleEndian) { out.append(contentsOf: $0) }
        return out + h + data
    }
}
