/// The one rule for a path inside a module bundle, applied by the hub when it packages
/// and by the device when it unpacks, so that nothing the hub writes is refused later
/// and nothing else gets through: relative, no empty, `.` or `..` component, no `\`
/// (which some unzip tools treat as a separator) and no NUL.
enum BundlePath {
    static func isSafe(_ path: String) -> Bool {
        !path.isEmpty && !path.hasPrefix("/") && !path.contains("\\") && !path.contains("\0")
            && path.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
    }
}
