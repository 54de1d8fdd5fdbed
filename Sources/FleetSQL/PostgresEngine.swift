import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

/// A hub database on PostgreSQL, shared by every hub instance and `fleethub` command.
///
/// The hub's stores are synchronous, so each statement waits for postgres-nio's future
/// on the calling thread; the connections run on an event loop of their own, which no
/// caller ever is. A few connections are kept open and reused.
final class PostgresEngine: SQLEngine, @unchecked Sendable {
    let dialect = SQLDialect.postgres
    let migrationTable = "schemaMigration"

    private let url: PostgresURL
    private let configuration: PostgresConnection.Configuration
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let logger: Logger = {
        var logger = Logger(label: "fleethub.postgres")
        logger.logLevel = .error
        return logger
    }()
    private let idle = NIOLockedValueBox<[PostgresConnection]>([])
    private let slots = DispatchSemaphore(value: PostgresEngine.maximumConnections)
    private let nextID = ConnectionNumbers()

    static let maximumConnections = 4
    /// The advisory lock every write transaction takes first (`pg_advisory_xact_lock`):
    /// writes are serialised as SQLite's are, so a store's read-then-write stays true
    /// across hub instances.
    static let writeLock: Int64 = 0x666C_6565_7448_7562

    init(url: PostgresURL) throws {
        self.url = url
        configuration = try Self.configuration(for: url)
        // Fail now, with the reason, rather than at the first statement.
        let connection = try connect()
        idle.withLockedValue { $0.append(connection) }
    }

    deinit {
        for connection in idle.withLockedValue({ $0 }) { _ = try? connection.close().wait() }
        try? group.syncShutdownGracefully()
    }

    func read<T>(_ body: (SQLTransaction) throws -> T) throws -> T {
        try transaction(begin: ["BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"], body)
    }

    func write<T>(_ body: (SQLTransaction) throws -> T) throws -> T {
        try transaction(begin: ["BEGIN", "SELECT pg_advisory_xact_lock(\(Self.writeLock))"], body)
    }

    /// A session advisory lock on a connection of its own: the server releases it when
    /// the connection ends, also when this process dies.
    func takeTurn(_ name: String) async throws -> SQLTurn {
        let connection = try await PostgresConnection.connect(
            on: group.next(), configuration: configuration, id: nextID.next(), logger: logger
        ).get()
        do {
            _ = try await connection.query(
                PostgresQuery(unsafeSQL: "SELECT pg_advisory_lock(\(Self.turnKey(name)))"), logger: logger
            ).get()
        } catch {
            _ = try? await connection.close().get()
            throw SQLError.statementFailed(sql: "pg_advisory_lock (turn \(name))", reason: PostgresStatements.reason(error))
        }
        return PostgresTurn(connection: connection)
    }

    private func transaction<T>(begin: [String], _ body: (SQLTransaction) throws -> T) throws -> T {
        try withConnection { connection in
            let statements = PostgresStatements(connection: connection, logger: logger)
            for statement in begin { _ = try statements.run(statement, [], generated: false) }
            let result: T
            do {
                result = try body(SQLTransaction(dialect: .postgres, statements: statements))
            } catch {
                _ = try? statements.run("ROLLBACK", [], generated: false)
                throw error
            }
            _ = try statements.run("COMMIT", [], generated: false)
            return result
        }
    }

    private func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        slots.wait()
        defer { slots.signal() }
        let connection = try idle.withLockedValue { $0.popLast() } ?? connect()
        defer {
            // A connection the server or the network ended is dropped; the next caller opens a new one.
            if connection.isClosed { _ = try? connection.close().wait() } else { idle.withLockedValue { $0.append(connection) } }
        }
        return try body(connection)
    }

    private func connect() throws -> PostgresConnection {
        do {
            return try PostgresConnection.connect(
                on: group.next(), configuration: configuration, id: nextID.next(), logger: logger
            ).wait()
        } catch {
            throw SQLError.connectionFailed(url.description, reason: PostgresStatements.reason(error))
        }
    }

    private static func configuration(for url: PostgresURL) throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        do {
            switch url.tls {
            case .disable:
                tls = .disable
            case .prefer, .require:
                var unverified = TLSConfiguration.makeClientConfiguration()
                unverified.certificateVerification = .none
                let context = try NIOSSLContext(configuration: unverified)
                tls = url.tls == .prefer ? .prefer(context) : .require(context)
            case .verifyFull:
                var verified = TLSConfiguration.makeClientConfiguration()
                if let root = url.rootCertificate {
                    verified.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(root))
                }
                tls = .require(try NIOSSLContext(configuration: verified))
            }
        } catch {
            throw SQLError.invalidPostgresURL(url.description, reason: "TLS settings: \(error)")
        }
        var configuration = PostgresConnection.Configuration(
            host: url.host, port: url.port, username: url.user, password: url.password, database: url.database, tls: tls)
        configuration.options.connectTimeout = .seconds(10)
        return configuration
    }

    /// A stable key per turn name (FNV-1a), apart from `writeLock`.
    static func turnKey(_ name: String) -> Int64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in "fleethub turn \(name)".utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3
        }
        return Int64(bitPattern: hash)
    }
}

private struct PostgresTurn: SQLTurn, @unchecked Sendable {
    let connection: PostgresConnection
    func end() { _ = try? connection.close().wait() }
}

/// Connection ids for postgres-nio's logs.
private final class ConnectionNumbers: Sendable {
    private let value = NIOLockedValueBox(0)
    func next() -> Int { value.withLockedValue { $0 += 1; return $0 } }
}

struct PostgresStatements: SQLStatementRunner {
    let connection: PostgresConnection
    let logger: Logger

    private static let translated = NIOLockedValueBox<[String: String]>([:])

    func run(_ sql: String, _ arguments: [SQLValue], generated: Bool) throws -> SQLResult {
        let text = arguments.isEmpty ? sql : Self.numbered(sql, remember: !generated)
        var binds = PostgresBindings(capacity: arguments.count)
        for argument in arguments {
            switch argument {
            case .null: binds.appendNull()
            case .integer(let integer): binds.append(integer)
            case .real(let real): binds.append(real)
            case .text(let string): binds.append(string)
            case .blob(let data): binds.append(ByteBuffer(bytes: data))
            }
        }
        let result: PostgresQueryResult
        do {
            result = try connection.query(PostgresQuery(unsafeSQL: text, binds: binds), logger: logger).wait()
        } catch {
            throw SQLError.statementFailed(sql: sql, reason: Self.reason(error))
        }
        var rows: [SQLRow] = []
        rows.reserveCapacity(result.rows.count)
        var columns: SQLColumns?
        for row in result.rows {
            let names = columns ?? SQLColumns(row.map(\.columnName))
            columns = names
            rows.append(SQLRow(columns: names, values: try row.map(Self.value)))
        }
        return SQLResult(rows: rows, changes: result.metadata.rows ?? 0)
    }

    private static func value(_ cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil, cell.dataType != .void else { return .null }
        do {
            switch cell.dataType {
            case .int2, .int4, .int8, .oid:
                return .integer(try cell.decode(Int64.self))
            case .float4, .float8:
                return .real(try cell.decode(Double.self))
            case .numeric:
                let number = try cell.decode(Decimal.self)
                let integer = NSDecimalNumber(decimal: number).int64Value
                return Decimal(integer) == number ? .integer(integer) : .real(NSDecimalNumber(decimal: number).doubleValue)
            case .bool:
                return .integer(try cell.decode(Bool.self) ? 1 : 0)
            case .bytea:
                return .blob(Data(try cell.decode(ByteBuffer.self).readableBytesView))
            case .text, .varchar, .name, .bpchar, .unknown:
                return .text(try cell.decode(String.self))
            default:
                throw SQLError.unsupportedColumnType(column: cell.columnName, type: "\(cell.dataType)")
            }
        } catch let error as PostgresDecodingError {
            throw SQLError.unsupportedColumnType(column: cell.columnName, type: "\(cell.dataType) (\(error.code))")
        }
    }

    /// `?` and `?N` placeholders as PostgreSQL's `$N`, outside quoted text; a statement
    /// to `remember` is translated once per process.
    static func numbered(_ sql: String, remember: Bool = true) -> String {
        if let known = translated.withLockedValue({ $0[sql] }) { return known }
        var output = ""
        output.reserveCapacity(sql.utf8.count + 8)
        var next = 1
        var quote: Character?
        var characters = sql.makeIterator()
        var pending = characters.next()
        while let character = pending {
            pending = characters.next()
            if let open = quote {
                output.append(character)
                if character == open { quote = nil }
                continue
            }
            switch character {
            case "'", "\"":
                quote = character
                output.append(character)
            case "?":
                var digits = ""
                while let digit = pending, digit.isASCII, digit.isNumber {
                    digits.append(digit)
                    pending = characters.next()
                }
                if digits.isEmpty {
                    output += "$\(next)"
                    next += 1
                } else {
                    output += "$" + digits
                }
            default:
                output.append(character)
            }
        }
        if remember { translated.withLockedValue { $0[sql] = output } }
        return output
    }

    static func reason(_ error: any Error) -> String {
        if let error = error as? SQLError { return error.description }
        guard let error = error as? PSQLError else { return "\(error)" }
        if let info = error.serverInfo {
            var text = info[.message] ?? "the server refused the statement"
            if let detail = info[.detail] { text += " (\(detail))" }
            if let state = info[.sqlState] { text += " [SQLSTATE \(state)]" }
            return text
        }
        if let underlying = error.underlying { return "\(error.code): \(underlying)" }
        return "\(error.code)"
    }
}
