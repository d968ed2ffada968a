import Foundation

/// Minimal NumPy `.npy` (format 1.0) reader/writer for little-endian float32 arrays: the exchange format
/// between the `features` command and the Python training code.
public enum NPYFile {
    public struct Array: Sendable, Equatable {
        public var shape: [Int]
        public var values: [Float]
        public init(shape: [Int], values: [Float]) {
            self.shape = shape
            self.values = values
        }
    }

    public enum Error: Swift.Error, CustomStringConvertible {
        case notNPY(String)
        case unsupported(String)

        public var description: String {
            switch self {
            case let .notNPY(why): "not a .npy file: \(why)"
            case let .unsupported(why): "unsupported .npy: \(why)"
            }
        }
    }

    public static func encode(_ matrix: FeatureMatrix) -> Data {
        encode(Array(shape: [matrix.frames, matrix.nMels], values: matrix.values))
    }

    public static func encode(_ array: Array) -> Data {
        let shape = array.shape.count == 1 ? "(\(array.shape[0]),)" : "(" + array.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }"
        // Magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Swift.Array("NUMPY".utf8) + [1, 0])
        let len = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(len & 0xff), UInt8(len >> 8)])
        data.append(contentsOf: header.utf8)
        array.values.withUnsafeBufferPointer { data.append(UnsafeBufferPointer(start: UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: UInt8.self), count: $0.count * 4)) }
        return data
    }

    public static func decode(_ data: Data) throws(Error) -> Array {
        let bytes = [UInt8](data)
        guard bytes.count >= 10, bytes[0] == 0x93, Swift.Array(bytes[1..<6]) == Swift.Array("NUMPY".utf8) else {
            throw .notNPY("bad magic")
        }
        let major = bytes[6]
        let headerLen: Int, headerStart: Int
        if major == 1 {
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8; headerStart = 10
        } else if major == 2 || major == 3, bytes.count >= 12 {
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24; headerStart = 12
        } else { throw .unsupported("version \(major)") }
        guard headerStart + headerLen <= bytes.count,
              let header = String(bytes: bytes[headerStart..<(headerStart + headerLen)], encoding: .utf8) else {
            throw .notNPY("truncated header")
        }
        guard header.contains("'descr': '<f4'") else { throw .unsupported("only little-endian float32 ('<f4'): \(header)") }
        guard header.contains("'fortran_order': False") else { throw .unsupported("Fortran order") }
        guard let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw .notNPY("no shape")
        }
        let dims = header[open.upperBound..<close].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let shape = try dims.map { d throws(Error) -> Int in
            guard let v = Int(d), v >= 0 else { throw .notNPY("bad shape \(d)") }
            return v
        }
        // The element count from the header's dims, which may be anything: checked for overflow against the
        // bytes actually there (deploy/fuzz.sh found `'shape': (huge, huge)` trapping in the product).
        let start = headerStart + headerLen
        var count = 1
        for d in shape {
            let (c, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, c <= (bytes.count - start) / 4 else { throw .notNPY("shape \(shape) does not fit the \(bytes.count - start) data bytes") }
            count = c
        }
        guard bytes.count - start == count * 4 else { throw .notNPY("expected \(count * 4) data bytes, found \(bytes.count - start)") }
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBytes { dst in
            bytes.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[start...])) }
        }
        return Array(shape: shape, values: values)
    }
}
