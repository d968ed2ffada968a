import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Durable replacement of a file: write a temporary file beside it, fsync it, rename it over the target,
/// fsync the directory. A crash at any point leaves either the old or the new file, never a mix, which is
/// what lets a node that loses power mid-update still start with a coherent config and model.
public enum AtomicFile {
    public struct WriteError: Error, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "cannot write \(path): \(reason)" }
    }

    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws {
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory.isEmpty ? "." : directory, withIntermediateDirectories: true)
        let temp = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw WriteError(path: temp, reason: String(cString: strerror(errno))) }
        var ok = false
        defer { if !ok { unlink(temp) } }
        do {
            defer { close(fd) }
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeBytes { buf in Glibc.write(fd, buf.baseAddress! + offset, bytes.count - offset) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw WriteError(path: temp, reason: String(cString: strerror(errno)))
                }
                offset += n
            }
            guard fsync(fd) == 0 else { throw WriteError(path: temp, reason: "fsync: \(String(cString: strerror(errno)))") }
        }
        guard rename(temp, path) == 0 else { throw WriteError(path: path, reason: "rename: \(String(cString: strerror(errno)))") }
        ok = true
        let dfd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }
}
