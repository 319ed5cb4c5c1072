# install() rules: the one description of the installed appliance that
# both packages use (packaging/rpm/cep.spec, packaging/deb; docs/packaging.md).
# Binaries, man pages, docs and completion follow GNUInstallDirs; systemd's
# directories (units, presets, sysusers.d, tmpfiles.d) are systemd's own,
# from its pkg-config file, so a Debian 12 build puts units in
# /lib/systemd/system and a Fedora build in /usr/lib/systemd/system. Each
# can be overridden (-DCEP_SYSTEMD_UNITDIR=... etc.), as the spec does with
# the rpm macros.

# systemd.pc answers for prefix /usr; an install under another prefix
# (a test install as a user) gets the same layout below that prefix. The
# answer is cached at the first configure, like every install directory.
function(cep_systemd_dir var pcvar fallback)
  if(DEFINED ${var})
    return()
  endif()
  set(value "")
  # PKG_CONFIG_EXECUTABLE: from find_package(PkgConfig) at the top
  if(PKG_CONFIG_EXECUTABLE)
    set(defs "")
    if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
      set(defs "--define-variable=prefix=${CMAKE_INSTALL_PREFIX}"
               "--define-variable=root_prefix=${CMAKE_INSTALL_PREFIX}"
               "--define-variable=rootprefix=${CMAKE_INSTALL_PREFIX}")
    endif()
    execute_process(COMMAND ${PKG_CONFIG_EXECUTABLE} ${defs} --variable=${pcvar} systemd
      OUTPUT_VARIABLE value OUTPUT_STRIP_TRAILING_WHITESPACE
      RESULT_VARIABLE rc ERROR_QUIET)
    if(NOT rc EQUAL 0)
      set(value "")
    endif()
  endif()
  if(value STREQUAL "")
    set(value "${CMAKE_INSTALL_PREFIX}/${fallback}")
  endif()
  set(${var} "${value}" CACHE PATH "install directory: ${pcvar}")
endfunction()

cep_systemd_dir(CEP_SYSTEMD_UNITDIR systemdsystemunitdir lib/systemd/system)
cep_systemd_dir(CEP_SYSTEMD_PRESETDIR systemdsystempresetdir lib/systemd/system-preset)
cep_systemd_dir(CEP_SYSUSERSDIR sysusersdir lib/sysusers.d)
cep_systemd_dir(CEP_TMPFILESDIR tmpfilesdir lib/tmpfiles.d)
set(CEP_BASH_COMPLETIONDIR "${CMAKE_INSTALL_DATADIR}/bash-completion/completions"
  CACHE PATH "install directory: bash completions")

# Binaries: relay, delegate, runner and cepctl have their install() line
# next to their target; cep-signer and cep-launcher (signer/, launcher/)
# are installed here when this tree builds them, so their folders need no
# packaging knowledge (a second identical rule would be harmless). Each
# binary brings its man page (man/).
get_filename_component(_top ${CMAKE_CURRENT_LIST_DIR}/.. ABSOLUTE)
set(_sys ${_top}/appliance/systemd)
foreach(bin cep-relay cep-delegate cep-runner cepctl cep-signer cep-launcher)
  if(NOT TARGET ${bin})
    continue()
  endif()
  if(bin STREQUAL "cep-signer" OR bin STREQUAL "cep-launcher")
    install(TARGETS ${bin} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
  foreach(sec 1 8)
    if(EXISTS ${_top}/man/${bin}.${sec})
      install(FILES ${_top}/man/${bin}.${sec}
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man${sec})
    endif()
  endforeach()
endforeach()
install(FILES ${_top}/man/cep.yaml.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)

# systemd: every unit of appliance/systemd (other units are added there),
# the preset that enables them, users and folders.
file(GLOB _units CONFIGURE_DEPENDS ${_sys}/*.service ${_sys}/*.socket
  ${_sys}/*.timer ${_sys}/*.target ${_sys}/*.path)
install(FILES ${_units} DESTINATION ${CEP_SYSTEMD_UNITDIR})
install(FILES ${_sys}/80-cep.preset DESTINATION ${CEP_SYSTEMD_PRESETDIR})
install(FILES ${_sys}/cep.sysusers DESTINATION ${CEP_SYSUSERSDIR} RENAME cep.conf)
install(FILES ${_sys}/cep.tmpfiles DESTINATION ${CEP_TMPFILESDIR} RENAME cep.conf)

# The default configuration, generated from the built-in text
# (appliance/CMakeLists.txt), in /etc for prefix /usr (GNUInstallDirs'
# FULL_ form). A config file: the packages never overwrite
# an edited one (%config(noreplace), a Debian conffile).
install(FILES ${CMAKE_BINARY_DIR}/cep.yaml
  DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/cep)

install(FILES ${_top}/appliance/bash-completion/cepctl
  DESTINATION ${CEP_BASH_COMPLETIONDIR})

# Documentation: README and docs/ keep their relative links; examples are
# what README's commands use.
install(FILES ${_top}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
file(GLOB _docs CONFIGURE_DEPENDS ${_top}/docs/*.md)
install(FILES ${_docs} DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs)
file(GLOB _examples CONFIGURE_DEPENDS ${_top}/examples/*.yaml)
install(FILES ${_examples} DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
