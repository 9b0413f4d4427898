//! Open MPI's C API, loaded at run time: the eleven functions and the five predefined handles
//! data-parallel training uses. In Open MPI's `mpi.h` a handle such as `MPI_COMM_WORLD` is the
//! address of an exported object (`&ompi_mpi_comm_world`), so looking that object up in the
//! library gives the handle itself; these names and the thread-level values below are Open MPI's
//! ABI since 1.x (`libmpi.so.40` since 3.0).

use std::ffi::{OsString, c_char, c_int, c_void};

use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};

type Handle = *mut c_void;

/// `MPI_SUCCESS`.
const SUCCESS: c_int = 0;
/// `MPI_THREAD_SERIALIZED`: any thread may call, one at a time.
const THREAD_SERIALIZED: c_int = 2;
/// `MPI_IN_PLACE` in Open MPI.
const IN_PLACE: *const c_void = std::ptr::without_provenance(1);
/// `MPI_MAX_ERROR_STRING` in Open MPI.
const MAX_ERROR_STRING: usize = 256;

type Init = unsafe extern "C" fn(*mut c_int, *mut *mut *mut c_char, c_int, *mut c_int) -> c_int;
type Flag = unsafe extern "C" fn(*mut c_int) -> c_int;
type CommInt = unsafe extern "C" fn(Handle, *mut c_int) -> c_int;
type SetErrhandler = unsafe extern "C" fn(Handle, Handle) -> c_int;
type Allreduce =
    unsafe extern "C" fn(*const c_void, *mut c_void, c_int, Handle, Handle, Handle) -> c_int;
type Bcast = unsafe extern "C" fn(*mut c_void, c_int, Handle, c_int, Handle) -> c_int;
type Abort = unsafe extern "C" fn(Handle, c_int) -> c_int;
type Finalize = unsafe extern "C" fn() -> c_int;
type ErrorString = unsafe extern "C" fn(c_int, *mut c_char, *mut c_int) -> c_int;

/// The loaded library: its functions and predefined handles.
pub(super) struct OpenMpi {
    init_thread: Init,
    initialized: Flag,
    finalized: Flag,
    comm_rank: CommInt,
    comm_size: CommInt,
    set_errhandler: SetErrhandler,
    allreduce: Allreduce,
    bcast: Bcast,
    abort: Abort,
    finalize: Finalize,
    error_string: ErrorString,
    comm_world: Handle,
    float: Handle,
    byte: Handle,
    sum: Handle,
    errors_return: Handle,
    /// Kept loaded for the process's life: the pointers above point into it.
    _library: Library,
}

// The handles are addresses of Open MPI's process-wide objects, and `Communicator` serializes
// every call, which is what `MPI_THREAD_SERIALIZED` asks.
unsafe impl Send for OpenMpi {}
unsafe impl Sync for OpenMpi {}

impl OpenMpi {
    /// Loads `path` (default `libmpi.so.40`) with its symbols global: Open MPI's plugins, loaded
    /// by the library itself, resolve their symbols against it.
    pub(super) fn load(path: Option<OsString>) -> Result<Self, String> {
        let path = path.unwrap_or_else(|| "libmpi.so.40".into());
        let shown = path.to_string_lossy().into_owned();
        // SAFETY: loading runs the library's initializers; Open MPI's only register its objects.
        let library =
            unsafe { Library::open(Some(&path), RTLD_NOW | RTLD_GLOBAL) }.map_err(|e| {
                format!(
                    "cannot load {shown} ({e}); install Open MPI (Debian: openmpi-bin) or name its \
                 libmpi in {}",
                    super::LIBRARY_VARIABLE
                )
            })?;
        // SAFETY: each name is looked up with the type Open MPI's mpi.h declares for it.
        unsafe {
            let object = |name: &str| -> Result<Handle, String> {
                library.get::<Handle>(name).map(|s| s.into_raw()).map_err(|e| {
                    format!(
                        "{shown} has no `{name}` ({e}): not Open MPI's library (only Open MPI's \
                         ABI is supported)"
                    )
                })
            };
            let comm_world = object("ompi_mpi_comm_world")?;
            let float = object("ompi_mpi_float")?;
            let byte = object("ompi_mpi_byte")?;
            let sum = object("ompi_mpi_op_sum")?;
            let errors_return = object("ompi_mpi_errors_return")?;
            macro_rules! function {
                ($name:literal) => {
                    *library
                        .get($name)
                        .map_err(|e| format!("{shown}: {}: {e}", $name))?
                };
            }
            Ok(Self {
                init_thread: function!("MPI_Init_thread"),
                initialized: function!("MPI_Initialized"),
                finalized: function!("MPI_Finalized"),
                comm_rank: function!("MPI_Comm_rank"),
                comm_size: function!("MPI_Comm_size"),
                set_errhandler: function!("MPI_Comm_set_errhandler"),
                allreduce: function!("MPI_Allreduce"),
                bcast: function!("MPI_Bcast"),
                abort: function!("MPI_Abort"),
                finalize: function!("MPI_Finalize"),
                error_string: function!("MPI_Error_string"),
                comm_world,
                float,
                byte,
                sum,
                errors_return,
                _library: library,
            })
        }
    }

    /// MPI's message for `code`.
    fn check(&self, what: &str, code: c_int) -> Result<(), String> {
        if code == SUCCESS {
            return Ok(());
        }
        let mut text = [0 as c_char; MAX_ERROR_STRING];
        let mut len: c_int = 0;
        // SAFETY: the buffer holds MPI_MAX_ERROR_STRING characters, as the call requires.
        let described = unsafe { (self.error_string)(code, text.as_mut_ptr(), &mut len) };
        let message = if described == SUCCESS {
            let len = (len.max(0) as usize).min(MAX_ERROR_STRING);
            let bytes: Vec<u8> = text[..len].iter().map(|&c| c as u8).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            format!("error {code}")
        };
        Err(format!("{what}: {message}"))
    }

    /// Initializes MPI for serialized calls (unless the host already did) and makes errors on
    /// the world communicator return codes instead of ending the process; the rank and size.
    pub(super) fn init(&self) -> Result<(usize, usize), String> {
        let mut flag: c_int = 0;
        // SAFETY: every pointer below is to a live local of the type the call writes.
        unsafe {
            self.check("MPI_Initialized", (self.initialized)(&mut flag))?;
            if flag == 0 {
                let mut provided: c_int = 0;
                let code = (self.init_thread)(
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    THREAD_SERIALIZED,
                    &mut provided,
                );
                self.check("MPI_Init_thread", code)?;
                if provided < THREAD_SERIALIZED {
                    return Err(format!(
                        "this MPI library offers thread level {provided}; training needs \
                         MPI_THREAD_SERIALIZED ({THREAD_SERIALIZED})"
                    ));
                }
            }
            let code = (self.set_errhandler)(self.comm_world, self.errors_return);
            self.check("MPI_Comm_set_errhandler", code)?;
            let (mut rank, mut size): (c_int, c_int) = (0, 0);
            self.check(
                "MPI_Comm_rank",
                (self.comm_rank)(self.comm_world, &mut rank),
            )?;
            self.check(
                "MPI_Comm_size",
                (self.comm_size)(self.comm_world, &mut size),
            )?;
            Ok((rank as usize, size as usize))
        }
    }

    /// `MPI_Allreduce(MPI_IN_PLACE, values, …, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD)`.
    pub(super) fn all_reduce_sum_f32(&self, values: &mut [f32]) -> Result<(), String> {
        let count = c_int::try_from(values.len()).map_err(|_| "count over i32::MAX")?;
        // SAFETY: `values` holds `count` floats, reduced in place.
        let code = unsafe {
            (self.allreduce)(
                IN_PLACE,
                values.as_mut_ptr().cast(),
                count,
                self.float,
                self.sum,
                self.comm_world,
            )
        };
        self.check("MPI_Allreduce", code)
    }

    /// `MPI_Bcast(bytes, …, MPI_BYTE, 0, MPI_COMM_WORLD)`.
    pub(super) fn broadcast_bytes(&self, bytes: &mut [u8]) -> Result<(), String> {
        let count = c_int::try_from(bytes.len()).map_err(|_| "count over i32::MAX")?;
        // SAFETY: `bytes` holds `count` bytes, written on every rank but the root.
        let code = unsafe {
            (self.bcast)(
                bytes.as_mut_ptr().cast(),
                count,
                self.byte,
                0,
                self.comm_world,
            )
        };
        self.check("MPI_Bcast", code)
    }

    /// `MPI_Abort(MPI_COMM_WORLD, code)`: ends every rank.
    pub(super) fn abort(&self, code: c_int) {
        // SAFETY: a plain call; it does not return on Open MPI.
        unsafe {
            (self.abort)(self.comm_world, code);
        }
    }

    /// `MPI_Finalize`, once.
    pub(super) fn finalize(&self) -> Result<(), String> {
        let mut done: c_int = 0;
        // SAFETY: a pointer to a live local; finalize takes no arguments.
        unsafe {
            self.check("MPI_Finalized", (self.finalized)(&mut done))?;
            if done == 0 {
                self.check("MPI_Finalize", (self.finalize)())?;
            }
        }
        Ok(())
    }
}
