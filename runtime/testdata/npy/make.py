"""Writes the .npy files runtime/src/npy.rs tests read: real NumPy output, committed so that the
runtime's unit tests need no Python. Run from this folder: python make.py"""
import numpy as np

np.save("f32_2x3.npy", np.array([[0.0, 1.5, -2.25], [3.0e-8, 1.0e10, -0.0]], dtype="<f4"))
np.save("f64_4.npy", np.array([0.1, -2.5, 1e300, 7.0], dtype="<f8"))
np.save("u8_2x2.npy", np.array([[0, 1], [128, 255]], dtype="u1"))
np.save("i64_3.npy", np.array([-1, 0, 1234567], dtype="<i8"))
np.save("f32_scalar.npy", np.array(42.5, dtype="<f4"))
np.save("f32_fortran.npy", np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)))
np.save("f32_be.npy", np.array([1.0, 2.0], dtype=">f4"))
np.save("i32_2.npy", np.array([1, 2], dtype="<i4"))
# NumPy picks version 2.0 only for huge headers; force it through the format module.
with open("f32_v2.npy", "wb") as f:
    arr = np.array([1.0, 2.0, 3.0], dtype="<f4")
    np.lib.format.write_array(f, arr, version=(2, 0))
