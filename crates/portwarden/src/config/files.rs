//! Files the config names are read with [`bounded_read`]: a regular file, at most a cap.

pub use portwarden_bounded_read::{
    read_bounded, read_bounded_bytes, FileError, CONFIG_LIMIT, PEM_LIMIT, SECRET_LIMIT,
};
