/// One value per worker (Linux: a per-CPU variable, `DEFINE_PER_CPU` / `this_cpu_ptr`): route
/// caches, counter blocks, scratch state. Sized by the number of workers that will use it;
/// worker `i` reads and writes only element `i`, so no lock and no atomic guards it.
///
/// A worker whose index lies outside the storage is a programming error — a stack sized for
/// fewer workers than the group driving it — caught by a precondition (one unsigned compare),
/// never silently mapped onto another worker's state.
///
/// The control plane may read every element while workers run (counters summed on read); what
/// it reads of a value a worker is changing is the caller's contract, as for per-CPU data.
public final class WorkerLocal<Value>: RandomAccessCollection, @unchecked Sendable {
    @usableFromInline let storage: UnsafeMutablePointer<Value>
    /// How many workers this holds a value for.
    public let count: Int

    /// Makes one value per worker, `make(index)` for worker `index` in `0..<workers`.
    public init(workers: Int, _ make: (_ index: Int) throws -> Value) rethrows {
        precondition(workers >= 1, "WorkerLocal needs at least one worker, got \(workers)")
        storage = .allocate(capacity: workers)
        var made = 0
        do {
            while made < workers {
                (storage + made).initialize(to: try make(made))
                made += 1
            }
        } catch {
            storage.deinitialize(count: made)
            storage.deallocate()
            throw error
        }
        count = workers
    }

    deinit {
        storage.deinitialize(count: count)
        storage.deallocate()
    }

    /// The value of `worker` (Linux: `this_cpu_ptr`). Only `worker`'s own thread may write it.
    @inlinable
    public subscript(worker: Worker) -> Value {
        unsafeAddress {
            precondition(UInt(bitPattern: worker.index) < UInt(bitPattern: count),
                         "WorkerLocal: worker index beyond the workers this state was sized for")
            return UnsafePointer(storage + worker.index)
        }
        unsafeMutableAddress {
            precondition(UInt(bitPattern: worker.index) < UInt(bitPattern: count),
                         "WorkerLocal: worker index beyond the workers this state was sized for")
            return storage + worker.index
        }
    }

    // MARK: RandomAccessCollection (control plane: sums, resets, reports)

    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { count }

    /// The value of worker `index` (Linux: `per_cpu_ptr`).
    @inlinable
    public subscript(index: Int) -> Value {
        unsafeAddress {
            precondition(UInt(bitPattern: index) < UInt(bitPattern: count), "WorkerLocal index out of range")
            return UnsafePointer(storage + index)
        }
    }
}
