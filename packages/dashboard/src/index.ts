export const PACKAGE_NAME = "@oiafed/dashboard";
