import Foundation

/// A single `Range: bytes=…` request header, resolved against a file size (RFC 9110 §14).
/// Multiple ranges are not served: such a request gets the whole file, as RFC 9110 allows.
public enum ByteRange: Equatable, Sendable {
    /// Serve the whole file (no header, an unsupported unit, or several ranges).
    case whole
    /// Serve these bytes with 206.
    case partial(ClosedRange<Int>)
    /// No byte of the file is in the requested range: 416.
    case unsatisfiable

    public init(header: String?, size: Int) {
        guard let header, header.hasPrefix("bytes="), !header.contains(",") else {
            self = .whole
            return
        }
        let spec = header.dropFirst("bytes=".count).trimmingCharacters(in: .whitespaces)
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            self = .whole
            return
        }
        let first = parts[0].isEmpty ? nil : Int(parts[0])
        let last = parts[1].isEmpty ? nil : Int(parts[1])
        switch (parts[0].isEmpty, parts[1].isEmpty) {
        case (false, _):
            guard let start = first, start >= 0, parts[1].isEmpty || (last ?? -1) >= start else {
                self = .whole
                return
            }
            guard start < size else {
                self = .unsatisfiable
                return
            }
            self = .partial(start...min(last ?? size - 1, size - 1))
        case (true, false):
            guard let suffix = last, suffix > 0 else {
                self = last == 0 ? .unsatisfiable : .whole
                return
            }
            guard size > 0 else {
                self = .unsatisfiable
                return
            }
            self = .partial(max(0, size - suffix)...(size - 1))
        case (true, true):
            self = .whole
        }
    }
}
