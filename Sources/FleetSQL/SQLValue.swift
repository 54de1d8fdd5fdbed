import Foundation

/// A value as the hub's databases store it: SQLite's five storage classes, which the
/// PostgreSQL schema holds one for one in BIGINT, DOUBLE PRECISION, TEXT and BYTEA
/// columns. Booleans are integers and dates are text on both, so one query reads and
/// writes the same values whichever database runs it.
public enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob(Data)
}

/// A Swift value a statement takes as an argument.
public protocol SQLArgument: Sendable {
    var sqlValue: SQLValue { get }
}

extension SQLValue: SQLArgument {
    public var sqlValue: SQLValue { self }
}

/// A Swift value a column is read as; `nil` when the stored value cannot be one.
public protocol SQLColumnValue {
    init?(sqlValue: SQLValue)
}

extension String: SQLArgument, SQLColumnValue {
    public var sqlValue: SQLValue { .text(self) }
    public init?(sqlValue: SQLValue) {
        switch sqlValue {
        case .text(let text): self = text
        case .blob(let data): self = String(decoding: data, as: UTF8.self)
        default: return nil
        }
    }
}

extension Int64: SQLArgument, SQLColumnValue {
    public var sqlValue: SQLValue { .integer(self) }
    public init?(sqlValue: SQLValue) {
        switch sqlValue {
        case .integer(let value): self = value
        case .real(let value): guard let exact = Int64(exactly: value) else { return nil }; self = exact
        default: return nil
        }
    }
}

extension Int: SQLArgument, SQLColumnValue {
    public var sqlValue: SQLValue { .integer(Int64(self)) }
    public init?(sqlValue: SQLValue) {
        guard let value = Int64(sqlValue: sqlValue) else { return nil }
        self = Int(value)
    }
}

extension Double: SQLArgument, SQLColumnValue {
    public var sqlValue: SQLValue { .real(self) }
    public init?(sqlValue: SQLValue) {
        switch sqlValue {
        case .real(let value): self = value
        case .integer(let value): self = Double(value)
        default: return nil
        }
    }
}

extension Bool: SQLArgument, SQLColumnValue {
    public var sqlValue: SQLValue { .integer(self ? 1 : 0) }
    public init?(sqlValue: SQLValue) {
        switch sqlValue {
        case .integer(let value): self = value != 0
        case .real(let value): self = value != 0
        default: return nil
        }
    }
}

extension Data: SQLArgument, SQLColumnValue {
    public var sqlValue: SQLValue { .blob(self) }
    public init?(sqlValue: SQLValue) {
        switch sqlValue {
        case .blob(let data): self = data
        case .text(let text): self = Data(text.utf8)
        default: return nil
        }
    }
}

extension Date: SQLArgument, SQLColumnValue {
    /// `yyyy-MM-dd HH:mm:ss.SSS` in UTC, the text GRDB wrote for the hub's first
    /// schemas: such text sorts as the dates do, on both databases.
    public var sqlValue: SQLValue { .text(SQLDateText.format(self)) }
    public init?(sqlValue: SQLValue) {
        switch sqlValue {
        case .text(let text): guard let date = SQLDateText.parse(text) else { return nil }; self = date
        case .integer(let seconds): self = Date(timeIntervalSince1970: TimeInterval(seconds))
        case .real(let seconds): self = Date(timeIntervalSince1970: seconds)
        default: return nil
        }
    }
}

extension Optional: SQLArgument where Wrapped: SQLArgument {
    public var sqlValue: SQLValue { self?.sqlValue ?? .null }
}

/// Dates as text, without a formatter: the dashboard reads thousands per refresh.
enum SQLDateText {
    static func format(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        let (dayNumber, inDay) = milliseconds.floorDivided(by: 86_400_000)
        let (year, month, day) = civil(fromDays: dayNumber)
        let hour = inDay / 3_600_000, minute = inDay / 60_000 % 60, second = inDay / 1000 % 60, milli = inDay % 1000
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2)) \(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2)).\(pad(milli, 3))"
    }

    /// Reads `yyyy-MM-dd`, optionally followed by ` HH:mm`, `:ss` and `.SSS` (a `T` may
    /// stand for the space), in UTC: the forms SQLite's date functions and GRDB write.
    static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        func number(_ start: Int, _ count: Int) -> Int64? {
            guard start + count <= bytes.count else { return nil }
            var value: Int64 = 0
            for byte in bytes[start..<(start + count)] {
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int64(byte - 48)
            }
            return value
        }
        guard bytes.count >= 10, bytes[4] == 45, bytes[7] == 45,
            let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
            (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var milliseconds: Int64 = 0
        if bytes.count > 10 {
            guard bytes.count >= 16, bytes[10] == 32 || bytes[10] == 84, bytes[13] == 58,
                let hour = number(11, 2), let minute = number(14, 2)
            else { return nil }
            milliseconds = (hour * 3600 + minute * 60) * 1000
            if bytes.count > 16 {
                guard bytes.count >= 19, bytes[16] == 58, let second = number(17, 2) else { return nil }
                milliseconds += second * 1000
                if bytes.count > 19 {
                    guard bytes[19] == 46, bytes.count > 20, let fraction = number(20, bytes.count - 20) else { return nil }
                    var scaled = Double(fraction)
                    for _ in 0..<(bytes.count - 20) { scaled /= 10 }
                    milliseconds += Int64((scaled * 1000).rounded())
                }
            }
        }
        let days = Self.days(fromCivil: year, month, day)
        return Date(timeIntervalSince1970: Double(days * 86_400_000 + milliseconds) / 1000)
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    // Howard Hinnant's days-from-civil and civil-from-days (proleptic Gregorian, UTC).
    private static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

extension Int64 {
    fileprivate func floorDivided(by divisor: Int64) -> (Int64, Int64) {
        let quotient = self / divisor, remainder = self % divisor
        return remainder < 0 ? (quotient - 1, remainder + divisor) : (quotient, remainder)
    }
}
