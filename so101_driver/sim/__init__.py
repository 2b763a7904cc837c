import os

# Offscreen rendering without a display: EGL unless the user chose another backend (glfw, osmesa).
os.environ.setdefault("MUJOCO_GL", "egl")
