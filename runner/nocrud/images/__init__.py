"""The second step of the data path: the app image and the pre-migrated database image.

Both are built once and cached by content hash (:mod:`~nocrud.images.build`), so
an unchanged project builds nothing and migrations never run per flow.
"""

from nocrud.images.build import BuildError, BuiltImages, build_images

__all__ = ["BuildError", "BuiltImages", "build_images"]
