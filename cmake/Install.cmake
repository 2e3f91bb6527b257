# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
# `cmake --install <build dir>` for a plain server (default prefix /usr/local):
#   bin/giz-gservice, bin/gizctl, bin/gizsim
#   lib/gizcloud/giz_plugin.so
#   share/gizcloud/{run-broker,run-gservice,render-conf,gen-certs} (0755),
#     mosquitto.conf (the template), gizcloud.env.example
#   lib/systemd/system/gizcloud-{gservice,broker,certs}.service (0644;
#     systemd reads /usr/local/lib/systemd/system), with /usr/local/ in the
#     paths inside replaced by the install prefix.
# GIZ_SYSTEMD_UNIT_DIR (relative to the prefix, or absolute) moves the units.
set(GIZ_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
    "Where `cmake --install` puts the systemd units (relative to the prefix, or absolute)")

install(TARGETS giz-gservice gizctl gizsim RUNTIME DESTINATION bin)
install(TARGETS giz_plugin LIBRARY DESTINATION lib/gizcloud)
install(PROGRAMS
          ${PROJECT_SOURCE_DIR}/deploy/run-broker
          ${PROJECT_SOURCE_DIR}/deploy/run-gservice
          ${PROJECT_SOURCE_DIR}/deploy/render-conf
          ${PROJECT_SOURCE_DIR}/deploy/gen-certs
        DESTINATION share/gizcloud)
install(FILES
          ${PROJECT_SOURCE_DIR}/deploy/mosquitto.conf
          ${PROJECT_SOURCE_DIR}/deploy/systemd/gizcloud.env.example
        DESTINATION share/gizcloud
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# The units name /usr/local/... paths; rewrite them for the prefix chosen at
# install time (`cmake --install build --prefix /opt/gizcloud`).
set(giz_units gizcloud-gservice.service gizcloud-broker.service gizcloud-certs.service)
install(CODE "
  set(unit_dir \"${GIZ_SYSTEMD_UNIT_DIR}\")
  if(NOT IS_ABSOLUTE \"\${unit_dir}\")
    set(unit_dir \"\${CMAKE_INSTALL_PREFIX}/\${unit_dir}\")
  endif()
  set(stage \"${PROJECT_BINARY_DIR}/giz-units\")
  file(MAKE_DIRECTORY \"\${stage}\")
  foreach(unit ${giz_units})
    file(READ \"${PROJECT_SOURCE_DIR}/deploy/systemd/\${unit}\" text)
    string(REPLACE \"/usr/local/\" \"\${CMAKE_INSTALL_PREFIX}/\" text \"\${text}\")
    file(WRITE \"\${stage}/\${unit}\" \"\${text}\")
    file(INSTALL \"\${stage}/\${unit}\" DESTINATION \"\${unit_dir}\"
         PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  endforeach()
")
