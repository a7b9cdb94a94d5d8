export const PACKAGE_NAME = "@oiafed/component";
