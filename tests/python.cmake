# Python suites of shoalfs (tests/python, pytest under Debian's /usr/bin/python3, which has
# python3-fsspec and python3-pytest). test_shoalfs_unit.py runs over a fake of libshoal;
# test_e2e.py starts nginx, moto_server and shoald on loopback and reads through libshoal.so;
# test_cold_e2e.py counts origin requests (tests/support/origin.py) of cold and warm reads
# through 1 and 3 nodes (issue 10); test_zerocopy.py checks every read path's bytes over page
# boundaries and, with tracemalloc, that results are filled in place (issue 11).
# Registered only in builds without SHOAL_SANITIZE: a Python process cannot load an
# ASan-built libshoal.so without LD_PRELOAD of the ASan runtime, and the release build
# already runs these tests against the same code.
if(NOT SHOAL_SANITIZE)
    set(SHOAL_PYTHON /usr/bin/python3)
    set(SHOAL_PYTEST_ENV
        "SHOAL_BUILD_DIR=${PROJECT_BINARY_DIR}"
        "SHOAL_LIBRARY=${PROJECT_BINARY_DIR}/client/libshoal.so"
        "PYTHONDONTWRITEBYTECODE=1")
    add_test(NAME python_shoalfs_unit
             COMMAND ${SHOAL_PYTHON} -m pytest -q -p no:cacheprovider
                     ${PROJECT_SOURCE_DIR}/tests/python/test_shoalfs_unit.py)
    add_test(NAME python_shoalfs_e2e
             COMMAND ${SHOAL_PYTHON} -m pytest -q -p no:cacheprovider -rs
                     ${PROJECT_SOURCE_DIR}/tests/python/test_e2e.py)
    add_test(NAME python_shoalfs_cold_e2e
             COMMAND ${SHOAL_PYTHON} -m pytest -q -p no:cacheprovider -rs
                     ${PROJECT_SOURCE_DIR}/tests/python/test_cold_e2e.py)
    add_test(NAME python_shoalfs_zerocopy
             COMMAND ${SHOAL_PYTHON} -m pytest -q -p no:cacheprovider -rs
                     ${PROJECT_SOURCE_DIR}/tests/python/test_zerocopy.py)
    set_tests_properties(python_shoalfs_unit PROPERTIES TIMEOUT 120
                         ENVIRONMENT "${SHOAL_PYTEST_ENV}")
    set_tests_properties(python_shoalfs_e2e PROPERTIES TIMEOUT 600
                         ENVIRONMENT "${SHOAL_PYTEST_ENV}")
    set_tests_properties(python_shoalfs_cold_e2e PROPERTIES TIMEOUT 300
                         ENVIRONMENT "${SHOAL_PYTEST_ENV}")
    set_tests_properties(python_shoalfs_zerocopy PROPERTIES TIMEOUT 300
                         ENVIRONMENT "${SHOAL_PYTEST_ENV}")
endif()
