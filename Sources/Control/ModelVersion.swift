/// Ordering of model versions, semver-style: dot-separated numeric parts compare as numbers
/// (`1.10.0 > 1.9.0`), a pre-release (`1.0.0-rc1`) sorts below its release, and anything non-numeric
/// compares as text. Used to refuse downgrades.
public enum ModelVersion {
    public static func compare(_ a: String, _ b: String) -> Int {
        func split(_ v: String) -> (core: [Substring], pre: [Substring]?) {
            let noBuild = v.split(separator: "+", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let parts = noBuild.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            let core = (parts.first ?? "").split(separator: ".", omittingEmptySubsequences: false)
            return (core, parts.count > 1 ? parts[1].split(separator: ".", omittingEmptySubsequences: false) : nil)
        }
        func part(_ x: Substring?, _ y: Substring?) -> Int {
            let x = x ?? "0", y = y ?? "0"
            if let i = Int(x), let j = Int(y) { return i < j ? -1 : (i > j ? 1 : 0) }
            if Int(x) != nil { return -1 }
            if Int(y) != nil { return 1 }
            return x < y ? -1 : (x > y ? 1 : 0)
        }
        let (ca, pa) = split(a), (cb, pb) = split(b)
        for i in 0..<max(ca.count, cb.count) {
            let c = part(i < ca.count ? ca[i] : nil, i < cb.count ? cb[i] : nil)
            if c != 0 { return c }
        }
        switch (pa, pb) {
        case (nil, nil): return 0
        case (nil, _): return 1
        case (_, nil): return -1
        case let (x?, y?):
            for i in 0..<max(x.count, y.count) {
                guard i < x.count else { return -1 }
                guard i < y.count else { return 1 }
                let c = part(x[i], y[i])
                if c != 0 { return c }
            }
            return 0
        }
    }
}
