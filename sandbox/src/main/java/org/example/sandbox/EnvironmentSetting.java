package org.example.sandbox;

/**
 * A whole-number setting from this JVM's environment (sandbox/start passes the caller's
 * environment on): its default when unset or blank, an error naming the variable and the
 * allowed range when it is anything but a number in that range.
 */
final class EnvironmentSetting {

  private EnvironmentSetting() {}

  static int wholeNumber(String variable, int defaultValue, int minimum, int maximum) {
    String setting = System.getenv(variable);
    if (setting == null || setting.isBlank()) {
      return defaultValue;
    }
    try {
      int value = Integer.parseInt(setting.strip());
      if (value >= minimum && value <= maximum) {
        return value;
      }
    } catch (NumberFormatException e) {
      // Reported below, with the allowed range.
    }
    throw new IllegalArgumentException(
        variable + " must be a whole number from " + minimum + " to " + maximum
            + " (got '" + setting + "')");
  }
}
