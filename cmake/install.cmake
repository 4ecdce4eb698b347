# SPDX-License-Identifier: Apache-2.0
# What `cmake --install` puts where (GNUInstallDirs), and the Debian package `cpack -G DEB`
# makes of it. Only the program is installed: the libraries of the tree are static and
# private to it.

install(TARGETS p11vault RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

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
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "p11-kit-modules, softhsm2")
# qrencode and a font for split --qr and --sheet (cairo draws the sheets with DejaVu).
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "qrencode, fonts-dejavu-core, opensc")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
