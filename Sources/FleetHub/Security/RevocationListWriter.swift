import FleetCore
import Foundation

/// Writes the CA's certificate revocation list (`crl.pem`, which the broker loads with
/// `crlfile`). swift-certificates 1.21 can read and issue certificates but cannot build
/// CRLs, so this runs the `openssl ca -gencrl` command (Debian package `openssl`) on the
/// CA's own index, key and certificate; nothing is sent anywhere.
struct RevocationListWriter {
    let authority: CertificateAuthority
    func write(validityDays: Int) throws {
        guard let openssl = Self.openssl() else { throw SecurityError.missingOpenSSL }
        let configPath = CertificateAuthority.file("openssl-ca.cnf", in: authority.folder)
        let config = """
            [ ca ]
            default_ca = fleethub
            [ fleethub ]
            database = \(authority.index.path)
            default_md = sha256
            default_crl_days = \(validityDays)

            """
        try Data(config.utf8).write(to: URL(fileURLWithPath: configPath))
        let completed: ProcessSpawner.Completed
        do {
            completed = try ProcessSpawner.run(
                [
                    openssl, "ca", "-gencrl", "-batch", "-config", configPath, "-keyfile", authority.keyPath, "-cert",
                    authority.certificatePath, "-out", authority.revocationListPath,
                ], environment: ProcessInfo.processInfo.environment)
        } catch {
            throw SecurityError.revocationListFailed("\(error)")
        }
        guard completed.status.succeeded else { throw SecurityError.revocationListFailed(completed.output) }
    }

    static func openssl() -> String? {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        return paths.map { "\($0)/openssl" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
