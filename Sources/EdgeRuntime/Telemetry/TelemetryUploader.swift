import FleetCore
import Foundation

/// Ships the buffer to the owner's store (docs/contract.md): batches in seq order, each a gzip JSON-lines
/// object at `{prefix}/{deviceId}/{yyyy}/{mm}/{dd}/{bufferId}-{firstSeq}-{lastSeq}.jsonl.gz` (or, for an
/// Azure ML collection, a plain one in Azure ML's layout: `TelemetryBatch.objectKey`), deleted from the
/// buffer only after the store acknowledged it.
///
/// Exactly once: the buffer persists a batch, compressed, before it is uploaded and hands the same batch
/// back until it is acknowledged, so a crash between the store's acknowledgement and the delete rewrites
/// the same key with the same bytes instead of creating a second object.
///
/// Failures keep the data and retry with capped exponential back-off; the reason is in `status`. The
/// uploader only reads the buffer and deletes what was acknowledged, so appends never wait for it.
public actor TelemetryUploader {
    public let buffer: TelemetryBuffer
    public let destination: StorageDestination
    /// Most records per object.
    public let batchRecords: Int
    /// About the most JSON-lines bytes per object (before gzip): one large batch must not take more
    /// memory than a small device has, on every restart.
    public let batchBytes: Int
    public static let defaultBatchBytes = 8 << 20
    /// Seconds between looks at an empty buffer.
    public let pollSeconds: Double
    /// Waits after failed uploads: 1 s doubling to 5 min by default.
    public let backOff: BackoffSchedule
    public private(set) var status = TelemetryUploadStatus()

    public init(
        buffer: TelemetryBuffer, destination: StorageDestination, batchRecords: Int = 10_000,
        batchBytes: Int = TelemetryUploader.defaultBatchBytes, pollSeconds: Double = 1,
        backOff: BackoffSchedule = BackoffSchedule(initial: .seconds(1), maximum: .seconds(300))
    ) {
        self.buffer = buffer
        self.destination = destination
        self.batchRecords = batchRecords
        self.batchBytes = batchBytes
        self.pollSeconds = pollSeconds
        self.backOff = backOff
    }

    /// Uploads the next batch and deletes it from the buffer; returns false when nothing was buffered.
    /// A store error is recorded in `status` and rethrown; the batch stays buffered.
    @discardableResult
    public func uploadNextBatch() async throws -> Bool {
        do {
            guard let batch = try await buffer.nextBatch(maxRecords: batchRecords, maxBytes: batchBytes) else { return false }
            let key = batch.objectKey(prefix: destination.prefix, deviceId: buffer.deviceId)
            try await destination.store.put(key: key, data: batch.object, contentType: batch.contentType)
            try await buffer.acknowledge(batch)
            status.objectsUploaded += 1
            status.recordsUploaded += batch.count
            status.compressedBytes += batch.object.count
            status.uncompressedBytes += batch.uncompressedBytes
            status.lastObjectKey = key
            status.lastSuccess = Date()
            status.lastError = nil
            status.consecutiveFailures = 0
            status.nextAttempt = nil
            return true
        } catch {
            status.lastError = "\(error)"
            status.consecutiveFailures += 1
            throw error
        }
    }

    /// Uploads until the buffer is empty; stops at the first failure and rethrows it.
    /// Returns the number of objects written.
    @discardableResult
    public func uploadAll() async throws -> Int {
        var objects = 0
        while try await uploadNextBatch() {
            objects += 1
        }
        return objects
    }

    /// Expires, uploads and backs off until the task is cancelled. Never throws: failures are in `status`.
    public func run() async {
        while !Task.isCancelled {
            var wait = Duration.seconds(pollSeconds)
            do {
                try await buffer.expire()
                if try await uploadNextBatch() { continue }
            } catch {
                status.lastError = "\(error)"
                wait = backOff.delay(attempt: max(status.consecutiveFailures, 1))
                status.nextAttempt = Date().addingTimeInterval(wait / .seconds(1))
            }
            try? await Task.sleep(for: wait)
        }
    }
}
