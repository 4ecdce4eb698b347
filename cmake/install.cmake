# SPDX-License-Identifier: Apache-2.0
# What `cmake --install` puts where (GNUInstallDirs), and the Debian package `cpack -G DEB`
# makes of it. Three install components:
#   program      the p11vault binary (it links the library statically), its man page,
#                completions and documentation: what the .deb holds
#   library      libp11vault.so.VERSION and its soname link
#   development  the headers, libp11vault.so, libp11vault.a, p11vault.pc and the CMake
#                package (docs/library.md)
# `cmake --install` installs all three.
include(CMakePackageConfigHelpers)

set(CMAKE_INSTALL_DEFAULT_COMPONENT_NAME program)

install(TARGETS p11vault RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The library, where it is made (not in sanitizer builds: CMakeLists.txt). The public
# headers are all of include/p11vault/ (they include only the C++ standard library and
# each other; tests/packaging/library_test.sh compiles each alone).
if(TARGET p11vault_shared)
  install(TARGETS p11vault_shared EXPORT p11vaultTargets
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT library NAMELINK_COMPONENT development)
  install(TARGETS p11vault_lib EXPORT p11vaultStaticTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development)
  install(DIRECTORY include/p11vault DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT development
          FILES_MATCHING PATTERN "*.hpp")

  set(P11VAULT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/p11vault)
  install(EXPORT p11vaultTargets NAMESPACE p11vault:: DESTINATION ${P11VAULT_CMAKE_DIR} COMPONENT development)
  install(EXPORT p11vaultStaticTargets NAMESPACE p11vault:: DESTINATION ${P11VAULT_CMAKE_DIR}
          COMPONENT development)
  configure_package_config_file(cmake/p11vaultConfig.cmake.in ${PROJECT_BINARY_DIR}/cmake/p11vaultConfig.cmake
                                INSTALL_DESTINATION ${P11VAULT_CMAKE_DIR})
  # Which installed version satisfies find_package(p11vault X.Y): the same rule as the
  # soname (CMakeLists.txt, SOVERSION). While 0.x any minor release may break the API, so
  # only the same 0.Y (or a newer patch release of it) matches; from 1.0 on, the same major.
  # AnyNewerVersion would accept an incompatible release.
  if(PROJECT_VERSION_MAJOR EQUAL 0)
    set(P11VAULT_VERSION_COMPATIBILITY SameMinorVersion)
  else()
    set(P11VAULT_VERSION_COMPATIBILITY SameMajorVersion)
  endif()
  write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/p11vaultConfigVersion.cmake
                                   COMPATIBILITY ${P11VAULT_VERSION_COMPATIBILITY})
  install(FILES ${PROJECT_BINARY_DIR}/cmake/p11vaultConfig.cmake ${PROJECT_BINARY_DIR}/cmake/p11vaultConfigVersion.cmake
          DESTINATION ${P11VAULT_CMAKE_DIR} COMPONENT development)

  # p11vault.pc, relocatable: its prefix is found from its own directory.
  file(RELATIVE_PATH P11VAULT_PC_PREFIX_FROM_PCFILEDIR /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
  string(REGEX REPLACE "/$" "" P11VAULT_PC_PREFIX_FROM_PCFILEDIR "${P11VAULT_PC_PREFIX_FROM_PCFILEDIR}")
  # Libs.private (used by `pkg-config --static` only): the -L/-l flags of what libp11vault.a
  # needs, as found for this build. Not Requires.private: pkg-config adds the --cflags of
  # those packages to every build against p11vault, and fails where their .pc files are not
  # installed, although the shared library and the headers need none of them.
  pkg_check_modules(P11VAULT_PC_PRIVATE REQUIRED QUIET libcrypto p11-kit-1 fmt libgfshare cairo cairo-pdf cairo-png)
  set(P11VAULT_PC_LIBS_PRIVATE ${P11VAULT_PC_PRIVATE_LDFLAGS})
  # CMake asks pkg-config for system directories too; the linker searches those anyway.
  foreach(directory ${CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES})
    list(REMOVE_ITEM P11VAULT_PC_LIBS_PRIVATE -L${directory})
  endforeach()
  foreach(library ${CMAKE_DL_LIBS})
    list(APPEND P11VAULT_PC_LIBS_PRIVATE -l${library})
  endforeach()
  list(REMOVE_DUPLICATES P11VAULT_PC_LIBS_PRIVATE)
  list(JOIN P11VAULT_PC_LIBS_PRIVATE " " P11VAULT_PC_LIBS_PRIVATE)
  configure_file(cmake/p11vault.pc.in ${PROJECT_BINARY_DIR}/p11vault.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/p11vault.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT development)
  install(FILES docs/library.md DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT development)
endif()

find_program(GZIP_PROGRAM gzip REQUIRED)

# The man page, p11vault(1), from its scdoc source; installed gzipped (Debian policy 12.1).
if(P11VAULT_MANPAGE)
  find_program(SCDOC_PROGRAM scdoc)
  if(NOT SCDOC_PROGRAM)
    message(FATAL_ERROR "scdoc is needed for the man page: apt-get install scdoc (scripts/setup build), "
                        "or configure with -DP11VAULT_MANPAGE=OFF")
  endif()
  set(P11VAULT_MAN_SOURCE ${PROJECT_SOURCE_DIR}/docs/p11vault.1.scd)
  set(P11VAULT_MAN_PAGE ${PROJECT_BINARY_DIR}/p11vault.1)
  add_custom_command(
    OUTPUT ${P11VAULT_MAN_PAGE} ${P11VAULT_MAN_PAGE}.gz
    COMMAND sh -c "'${SCDOC_PROGRAM}' < '${P11VAULT_MAN_SOURCE}' > '${P11VAULT_MAN_PAGE}'"
    COMMAND ${GZIP_PROGRAM} -9nf -k ${P11VAULT_MAN_PAGE}
    DEPENDS ${P11VAULT_MAN_SOURCE}
    COMMENT "Writing the man page p11vault(1)"
    VERBATIM)
  add_custom_target(p11vault_manpage ALL DEPENDS ${P11VAULT_MAN_PAGE} ${P11VAULT_MAN_PAGE}.gz)
  install(FILES ${P11VAULT_MAN_PAGE}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()

install(FILES completions/p11vault.bash DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME p11vault)
install(FILES completions/_p11vault DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)

install(FILES README.md docs/cli.md docs/json.md docs/security.md docs/extraction.md docs/tokens.md docs/escrow.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Debian wants its own copyright file (machine-readable, pointing at the licence text
# every Debian system has) and a gzipped changelog beside the docs.
string(TIMESTAMP P11VAULT_BUILD_YEAR "%Y" UTC)
configure_file(${PROJECT_SOURCE_DIR}/packaging/copyright.in ${PROJECT_BINARY_DIR}/packaging/copyright @ONLY)
configure_file(${PROJECT_SOURCE_DIR}/packaging/changelog.in ${PROJECT_BINARY_DIR}/packaging/changelog @ONLY)
add_custom_command(
  OUTPUT ${PROJECT_BINARY_DIR}/packaging/changelog.gz
  COMMAND ${GZIP_PROGRAM} -9nf -k ${PROJECT_BINARY_DIR}/packaging/changelog
  DEPENDS ${PROJECT_BINARY_DIR}/packaging/changelog
  VERBATIM)
add_custom_target(p11vault_changelog ALL DEPENDS ${PROJECT_BINARY_DIR}/packaging/changelog.gz)
install(FILES ${PROJECT_BINARY_DIR}/packaging/copyright ${PROJECT_BINARY_DIR}/packaging/changelog.gz
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# cpack -G DEB: one binary package. Its Depends are computed by dpkg-shlibdeps from the
# libraries the binary links (libssl3, libp11-kit0, libfmt9, libgfshare2, libc6,
# libstdc++6, libgcc-s1), nothing else; the tools some subcommands start are recommended.
set(CPACK_PACKAGE_NAME p11vault)
set(CPACK_PACKAGE_VENDOR "The p11vault developers")
set(CPACK_PACKAGE_CONTACT "p11vault developers <p11vault@users.noreply.github.com>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "back up and restore PKCS#11 token keys as PKCS#12 files")
set(CPACK_PACKAGE_DESCRIPTION
    "p11vault backs up the private keys and certificates of a PKCS#11 token (HSM or\n smartcard) into a password-protected PKCS#12 file, wrapping keys inside the\n token where it can, and restores PKCS#12 files from any producer onto a token\n with their identity intact, sensitive and non-extractable, all or nothing.\n It verifies backups (with a restore-and-sign drill), splits passwords M-of-N\n for key ceremonies and keeps a hash-chained record of every run.")
set(CPACK_STRIP_FILES ON)
set(CPACK_GENERATOR DEB)
# One package, the program: the library and its development files are for `cmake
# --install` (a Debian libp11vault0.1 / libp11vault-dev split is not made yet).
set(CPACK_INSTALL_CMAKE_PROJECTS "${PROJECT_BINARY_DIR};${PROJECT_NAME};program;/")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "p11-kit-modules, softhsm2")
# qrencode and a font for split --qr and --sheet (cairo draws the sheets with DejaVu).
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "qrencode, fonts-dejavu-core, opensc")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
