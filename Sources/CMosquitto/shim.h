#ifndef FLEET_CMOSQUITTO_SHIM_H
#define FLEET_CMOSQUITTO_SHIM_H
#include <mosquitto.h>
#include <mqtt_protocol.h>
#endif
