"""The malloc setting that keeps freed activation memory in the process."""

import platform

from engine.allocator import keep_freed_memory


def test_glibc_takes_the_setting_and_other_libcs_are_left_alone():
    kept = keep_freed_memory()
    assert isinstance(kept, bool)
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert kept
