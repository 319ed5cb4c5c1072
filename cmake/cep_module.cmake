# cep_module(NAME SOURCES f.c ... [DEPS d ...] [PRIVATE_DEPS d ...]): one
# folder of lib/ as the static library cep_NAME (docs/internals.md,
# "Modules"). Its folder is its PUBLIC include directory, so its headers
# are reachable only where cep_NAME is linked, directly or through DEPS:
# the compiler enforces the direction of the layers.
#
# DEPS are what the module's headers expose to its users (PUBLIC);
# PRIVATE_DEPS only what its .c files use. A bare lower-case name (base,
# http, proto) is the module cep_<name>; anything else (PkgConfig::CURL,
# nng::nng, a library path) is passed to the linker as it is. A static
# library carries even its private dependencies to the final link, so
# both kinds are what a program that links the module links.
function(cep_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  if(M_UNPARSED_ARGUMENTS OR NOT M_SOURCES)
    message(FATAL_ERROR "cep_module(${name}): SOURCES ... [DEPS ...] [PRIVATE_DEPS ...]")
  endif()
  add_library(cep_${name} STATIC ${M_SOURCES})
  target_include_directories(cep_${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
  foreach(kind DEPS PRIVATE_DEPS)
    set(libs)
    foreach(d ${M_${kind}})
      if(d MATCHES "^[a-z][a-z0-9_]*$")
        list(APPEND libs cep_${d})
      else()
        list(APPEND libs ${d})
      endif()
    endforeach()
    if(kind STREQUAL "DEPS")
      target_link_libraries(cep_${name} PUBLIC ${libs})
    else()
      target_link_libraries(cep_${name} PRIVATE ${libs})
    endif()
  endforeach()
endfunction()
